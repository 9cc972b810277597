/**
 * Who may train an on-chain job, as the chain says, refreshed while the job runs: the round's membership asks
 * it about every peer (node/job/membership.ts `admits`).
 *
 *   job requires a bond   only its active trainers: registered with their peer id, not unbonding, not slashed
 *   job without a bond    anyone but the peers of slashed registrations (registration is optional there)
 *   job not on chain      anyone (nothing to read)
 *
 * A trainer the job's validators slash (report_cheat by `threshold` of them: a lying reducer, consistently
 * harmful updates) is out of the membership of every peer that has refreshed since, so from the next round or
 * two on. Without a bond an excluded peer can come back under a new peer id: exclusion bites only where entry
 * costs a bond (ARCHITECTURE.md, "Trainer bonds").
 *
 * Until the first read succeeds, and when a refresh fails, the last known roster stands (at first: anyone):
 * an unreachable chain must not stop training.
 */
import type { Logger } from 'pino'
import type { Ledger } from './ledger.ts'

export const ROSTER_REFRESH_MS = 15_000

type RosterLedger = Pick<Ledger, 'getJob' | 'getTrainers'>

type Rule =
  | { kind: 'anyone' }
  | { kind: 'bonded', active: ReadonlySet<string> }
  | { kind: 'not-slashed', slashed: ReadonlySet<string> }

export class TrainerRoster {
  private rule: Rule = { kind: 'anyone' }
  private timer?: NodeJS.Timeout
  private refreshing?: Promise<void>

  constructor (private readonly ledger: RosterLedger, readonly job: string, private readonly opts: { logger?: Logger, refreshMs?: number } = {}) {}

  /** Whether `peer` may train the job by what the chain said at the last refresh. */
  allows (peer: string): boolean {
    const r = this.rule
    if (r.kind === 'bonded') return r.active.has(peer)
    if (r.kind === 'not-slashed') return !r.slashed.has(peer)
    return true
  }

  /** Reads the roster now, then every `refreshMs` until stop(). Resolves after the first read (failed or not). */
  async start (): Promise<void> {
    await this.refresh()
    this.timer = setInterval(() => { void this.refresh() }, this.opts.refreshMs ?? ROSTER_REFRESH_MS)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer != null) clearInterval(this.timer)
    this.timer = undefined
  }

  /** One read of the job and its trainers (one at a time); a failure keeps the last roster. */
  async refresh (): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const job = await this.ledger.getJob(this.job)
        const trainers = job == null ? null : await this.ledger.getTrainers(this.job)
        const before = this.describe()
        if (job == null || trainers == null) this.rule = { kind: 'anyone' }
        else if (BigInt(job.trainer_bond) > 0n) this.rule = { kind: 'bonded', active: new Set(trainers.filter(t => t.status === 'active').map(t => t.peer_id)) }
        else this.rule = { kind: 'not-slashed', slashed: new Set(trainers.filter(t => t.status === 'slashed').map(t => t.peer_id)) }
        const after = this.describe()
        if (after !== before) this.opts.logger?.info({ event: 'trainer-roster', job: this.job, roster: after }, 'trainer roster from the chain')
      } catch (err) {
        this.opts.logger?.warn({ job: this.job, err: (err as Error).message }, 'could not read the job\'s trainers on chain; keeping the last roster')
      } finally {
        this.refreshing = undefined
      }
    })()
    await this.refreshing
  }

  private describe (): string {
    const r = this.rule
    if (r.kind === 'bonded') return `bonded: ${[...r.active].sort().join(',')}`
    if (r.kind === 'not-slashed') return `open but slashed: ${[...r.slashed].sort().join(',')}`
    return 'anyone'
  }
}
