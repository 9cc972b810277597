/**
 * A validator's reports of consistently harmful contributors (contribution-scores.ts's HarmRecord) on chain:
 * `report_cheat` against the trainer registration that holds the peer id. Once `threshold` of the job's
 * validators reported it, the contract slashes the bond: the peer loses its reward eligibility, and the job's
 * trainer roster (node/chain/trainer-roster.ts) drops it from every training peer's membership.
 *
 * A peer with no registration cannot be reported (a job without a bond lets anyone train unregistered): it is
 * logged, and the validators' harm verdicts stay in their logs. Each peer is reported at most once a validator.
 */
import type { Logger } from 'pino'
import type { Ledger } from '../chain/ledger.ts'
import type { HarmRecord } from './contribution-scores.ts'

export type HarmReportOutcome =
  | { peer: string, outcome: 'reported', account: string, status: string }
  | { peer: string, outcome: 'not-registered' | 'already-out' }
  | { peer: string, outcome: 'failed', error: string }

type ReportLedger = Pick<Ledger, 'accountId' | 'getTrainerByPeer' | 'reportCheat'>

export class HarmReporter {
  /** Peers this validator has reported, or found nothing to report about: not asked again. */
  private readonly settled = new Set<string>()

  constructor (private readonly ledger: ReportLedger, readonly job: string, private readonly logger?: Logger) {}

  /** Reports every consistently harmful peer of `record` not reported yet; `round`: the round that made it so. */
  async report (record: HarmRecord, round: number): Promise<HarmReportOutcome[]> {
    const out: HarmReportOutcome[] = []
    for (const peer of record.consistentlyHarmful()) {
      if (this.settled.has(peer)) continue
      const rounds = record.harmfulRounds(peer)
      try {
        const trainer = await this.ledger.getTrainerByPeer(this.job, peer)
        if (trainer == null) {
          this.settled.add(peer)
          out.push({ peer, outcome: 'not-registered' })
          this.logger?.warn({ event: 'harmful-contributor', job: this.job, peer, rounds }, 'consistently harmful updates from a peer with no trainer registration: nothing to report on chain')
          continue
        }
        if (trainer.status !== 'active' || trainer.reports.some(r => r.validator === this.ledger.accountId)) {
          this.settled.add(peer)
          out.push({ peer, outcome: 'already-out' })
          continue
        }
        const reason = `harmful updates: the held-out loss rose in rounds ${rounds.join(', ')}`
        const after = await this.ledger.reportCheat({ job: this.job, accountId: trainer.account_id, round, reason })
        this.settled.add(peer)
        out.push({ peer, outcome: 'reported', account: trainer.account_id, status: after.status })
        this.logger?.warn({ event: 'harmful-contributor', job: this.job, peer, account: trainer.account_id, rounds, status: after.status }, after.status === 'slashed' ? 'reported on chain: the trainer is slashed' : 'reported on chain')
      } catch (err) {
        // Not settled: tried again after the next scored round.
        out.push({ peer, outcome: 'failed', error: (err as Error).message })
        this.logger?.warn({ event: 'harmful-contributor', job: this.job, peer, rounds, err: (err as Error).message }, 'could not report a harmful contributor on chain; trying again later')
      }
    }
    return out
  }
}
