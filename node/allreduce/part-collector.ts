/** The contributions to one part that this peer reduces: its own part, or a part it stands in for. */
import type { ResultHeader } from '../../protocol/allreduce.ts'
import { inCanonicalOrder, type WireContribution } from './combine.ts'
import type { RoundSession } from './round-session.ts'
import { crashBeforeResult } from '../faults/failpoints.ts'

export interface PartOutcome {
  header: ResultHeader
  payload: Uint8Array
  /** The payload decoded (the part's result values), when this peer has it already. */
  values?: Float32Array
  /** Nobody could reduce the part; there is nothing to relay. */
  localOnly?: boolean
}

export class Deferred<T> {
  readonly promise: Promise<T>
  resolve!: (value: T) => void
  settled = false
  constructor () {
    this.promise = new Promise<T>(resolve => { this.resolve = (v) => { if (!this.settled) { this.settled = true; resolve(v) } } })
  }
}

export class PartCollector<T> {
  readonly received = new Map<string, WireContribution<T>>()
  /** Members whose contribution arrived and could not be decoded: accounted for (not waited on), and named as rejected. */
  readonly refused = new Map<string, string>()
  readonly done = new Deferred<PartOutcome>()
  private timer: unknown
  private finishing = false

  constructor (
    private readonly session: RoundSession<T>,
    readonly part: number,
    readonly expected: ReadonlySet<string>,
    timeoutMs: number
  ) {
    this.timer = session.service.clock.setTimeout(() => { this.onDeadline() }, timeoutMs)
  }

  /**
   * At the deadline, a contributor whose bytes are still arriving is slow, not gone: wait on, re-checking
   * within its stall window. Members that never started, or went silent, are dropped.
   */
  private onDeadline (): void {
    if (this.done.settled || this.finishing) return
    const s = this.session
    const now = s.service.clock.now()
    let recheck = Infinity
    for (const p of this.expected) {
      if (this.received.has(p) || s.dead.has(p)) continue
      const last = s.lastProgress.get(p)
      const window = s.service.speeds.stallMs(p)
      if (last != null && now - last < window) recheck = Math.min(recheck, window - (now - last))
    }
    if (recheck === Infinity) this.finish()
    else this.timer = s.service.clock.setTimeout(() => { this.onDeadline() }, Math.max(10, recheck))
  }

  /** Still taking contributions (not finishing, not done). */
  get open (): boolean { return !this.done.settled && !this.finishing }

  add (c: WireContribution<T>): boolean {
    if (this.done.settled || this.finishing || this.received.has(c.peer) || this.refused.has(c.peer)) return false
    this.received.set(c.peer, c)
    this.check()
    return true
  }

  /** A contribution that arrived and failed to decode: its sender is rejected for the part, not waited for. */
  refuse (peer: string, reason: string): void {
    if (this.done.settled || this.finishing || this.received.has(peer) || this.refused.has(peer)) return
    this.refused.set(peer, reason)
    this.check()
  }

  /** Finishes once every expected member that is not known dead has contributed (or was refused). */
  check (): void {
    if (this.done.settled || this.finishing) return
    for (const p of this.expected) if (!this.received.has(p) && !this.refused.has(p) && !this.session.dead.has(p)) return
    this.finish()
  }

  finish (): void {
    if (this.done.settled || this.finishing) return
    this.finishing = true
    const s = this.session
    s.service.clock.clearTimeout(this.timer)
    // Fault-injection tests only (node/faults/failpoints.ts): this peer's own part, every contribution in, no result yet.
    if (this.part === s.selfIndex) crashBeforeResult(s.ctx.round, s.members.length)
    const contributions = inCanonicalOrder([...this.received.values()])
    const elements = s.partition.lengths[this.part]
    for (const p of this.expected) if (!this.received.has(p) && !this.refused.has(p)) s.drop(p)
    s.reducing(this.part)
    const header: ResultHeader = {
      ...s.frameBase(this.part),
      type: 'result',
      reducer: s.self,
      contributors: contributions.map(c => {
        const digest = s.inputDigest(this.part, c.peer)
        return digest == null ? { peer: c.peer, weight: c.weight } : { peer: c.peer, weight: c.weight, digest }
      })
    }
    void (async () => {
      try {
        const context = { job: s.ctx.job, round: s.ctx.round, members: s.members, part: this.part, refused: this.refused }
        const reduced = await s.aggregator.reduce(contributions, elements, s.resultSlot(this.part), context)
        this.done.resolve({ header: { ...header, meta: reduced.meta }, payload: reduced.payload, values: reduced.decoded })
      } catch (err) {
        // A rule that fails leaves the part unreduced here; members fall back to a stand-in.
        s.service.log({ part: this.part, stage: s.stage, err: (err as Error).message }, 'all-reduce: reduction failed')
        this.done.resolve({ header, payload: new Uint8Array(0), localOnly: true })
      }
    })()
  }

  cancel (): void {
    this.session.service.clock.clearTimeout(this.timer)
  }
}
