/**
 * The rounds running (or lingering) at this peer, by session key, and the bounded wait of an inbound
 * contribution for a round that has not begun here yet.
 */
import type { Clock } from '../time/clock.ts'
import type { RoundSession } from './round-session.ts'

export class SessionRegistry {
  private readonly sessions = new Map<string, RoundSession<any>>()
  private readonly waiting = new Map<string, Set<() => void>>()
  private pending = 0

  constructor (private readonly clock: Clock, private readonly waitMs: number, private readonly maxPending: number) {}

  has (key: string): boolean { return this.sessions.has(key) }

  /** Registers a round that begins here and wakes the contributions that were waiting for it. */
  add (session: RoundSession<any>): void {
    if (this.sessions.has(session.key)) throw new Error(`round ${session.key} is already running`)
    this.sessions.set(session.key, session)
    for (const wake of this.waiting.get(session.key) ?? []) wake()
    this.waiting.delete(session.key)
  }

  /** Forgets `session` (and only it: a newer session under the same key stays). */
  remove (session: RoundSession<any>): void {
    if (this.sessions.get(session.key) === session) this.sessions.delete(session.key)
  }

  /** A round of `job`/`round` that runs here with another group: it will not change its mind. */
  runningWithOtherGroup (job: string, round: number, group: string): RoundSession<any> | undefined {
    return [...this.sessions.values()].find(s => s.ctx.job === job && s.ctx.round === round && s.ctx.group !== group && s.stages.running)
  }

  /** The session under `key`, waiting (bounded, and only so many at once) for it to begin here. */
  async waitFor (key: string): Promise<RoundSession<any> | undefined> {
    const existing = this.sessions.get(key)
    if (existing != null || this.pending >= this.maxPending) return existing
    this.pending++
    try {
      await new Promise<void>(resolve => {
        const set = this.waiting.get(key) ?? new Set()
        this.waiting.set(key, set)
        const wake = (): void => { this.clock.clearTimeout(timer); set.delete(wake); if (set.size === 0 && this.waiting.get(key) === set) this.waiting.delete(key); resolve() }
        const timer = this.clock.setTimeout(wake, this.waitMs)
        set.add(wake)
      })
    } finally {
      this.pending--
    }
    return this.sessions.get(key)
  }

  /** Closes every session (the service stops). */
  closeAll (): void {
    for (const s of this.sessions.values()) s.close()
    this.sessions.clear()
  }
}
