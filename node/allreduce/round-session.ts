/**
 * One round of the butterfly at this peer: the group, its partition and frame context, the parts this peer
 * collects (its own, and any it stands in for), the outcome of every part, who was dropped, the traffic,
 * and the round's stage (round-stage.ts).
 */
import { ALLREDUCE_WIRE_VERSION, type FrameContext, type RejectReason } from '../../protocol/allreduce.ts'
import type { Clock } from '../time/clock.ts'
import type { AllReduceHost, RunOptions } from './all-reduce.ts'
import type { PartAggregator, WireContribution } from './combine.ts'
import { partitionGroup } from './group.ts'
import type { Partition } from './partition.ts'
import { Deferred, PartCollector, type PartOutcome } from './part-collector.ts'
import { AuditState } from './audit-state.ts'

export type { PartOutcome }
import { RoundStage, RoundStageMachine } from './round-stage.ts'
import type { PeerSpeedTracker } from './timeouts.ts'
import type { BufferPool } from '../memory/buffer-pool.ts'

/** What the pieces of the butterfly share: the service's host, clock, measured peer speeds and counters. */
export interface ButterflyContext {
  readonly host: AllReduceHost
  readonly clock: Clock
  readonly speeds: PeerSpeedTracker
  readonly stats: { rejectedFrames: number, inboundStreams: number }
  /** Payload buffers reused across rounds. */
  readonly pool: BufferPool
  /** How long an inbound contribution may wait for this peer's own round to begin. */
  readonly sessionWaitMs: number
  /** Reducer audits are on: inputs are digested and results listed with digests. */
  readonly auditing: boolean
  /** Members caught lying about a part's result: refused and left out of every later round here. */
  readonly excluded: ReadonlySet<string>
  /** Test-only: replaces the result payload sent for a part this peer reduced. */
  readonly corruptResult?: (part: number, payload: Uint8Array) => Uint8Array
  log: (obj: object, msg: string) => void
  /** Things an operator should see (a reducer caught lying). */
  warn: (obj: object, msg: string) => void
}

/** A contribution refused, by us or by the remote reducer; `reason` travels in a reject frame. */
export class RejectedError extends Error {
  override name = 'RejectedError'
  constructor (readonly reason: RejectReason, message: string) { super(message) }
}

/** Sessions are keyed by group too: a round retried with another group is another session. */
export function sessionKey (job: string, round: number, group: string): string {
  return `${job}#${round}#${group}`
}

export class RoundSession<T> {
  readonly key: string
  readonly self: string
  readonly selfIndex: number
  readonly members: readonly string[]
  readonly partition: Partition
  readonly ctx: FrameContext
  readonly dead = new Set<string>()
  readonly outcomes: Array<Deferred<PartOutcome>>
  readonly collectors = new Map<number, PartCollector<T>>()
  /** Stand-in requests that arrived before this peer knew it was the stand-in. */
  readonly pendingStandIn = new Map<number, Map<string, WireContribution<T>>>()
  readonly traffic = new Map<string, { sent: number, received: number }>()
  readonly standIns: Array<{ part: number, failed: string, standIn: string }> = []
  rejectedFrames = 0
  readonly stages: RoundStageMachine
  /** Answers being written to members: the round is not over for this peer until they are delivered. */
  readonly answering = new Set<Promise<void>>()
  /** Sends of this peer's own contribution payloads in progress outside `contribute` (audit fetches). */
  ownSends = 0
  /** Results received from reducers into pooled buffers, and those of them sent on (relayed) to another member. */
  private readonly pooledResults: Uint8Array[] = []
  private readonly relayed = new Set<Uint8Array>()
  /** When bytes last arrived from each member (inactivity, not total time, decides who stalled). */
  readonly lastProgress = new Map<string, number>()
  /** The reduced vector being assembled: each part's result is decoded straight into its place. */
  readonly result: Float32Array
  /** Reducer audits: input digests, verdicts, audit-fetches served (audit.ts). */
  readonly audit: AuditState

  constructor (readonly service: ButterflyContext, readonly opts: RunOptions<T>) {
    const g = opts.group
    this.key = sessionKey(g.job, g.round, g.hash)
    this.self = service.host.peerId.toString()
    this.members = g.members
    this.selfIndex = g.members.indexOf(this.self)
    if (this.selfIndex < 0) throw new RangeError('this peer is not a member of the group')
    if (opts.vector.length !== g.vectorLength) throw new RangeError(`vector has ${opts.vector.length} values, the group expects ${g.vectorLength}`)
    if (!Number.isFinite(opts.weight) || opts.weight < 0) throw new RangeError(`bad weight ${opts.weight}`)
    if (opts.payloads != null && opts.payloads.length !== g.members.length) throw new RangeError(`${opts.payloads.length} payloads for a group of ${g.members.length} parts`)
    if (opts.payloads != null && opts.decoded != null && opts.decoded.length !== g.vectorLength) throw new RangeError(`decoded has ${opts.decoded.length} values, the group expects ${g.vectorLength}`)
    if (opts.into != null && opts.into.length !== g.vectorLength) throw new RangeError(`into has ${opts.into.length} values, the group expects ${g.vectorLength}`)
    this.result = opts.into ?? new Float32Array(g.vectorLength)
    this.partition = partitionGroup(g, opts.balanceBySpeed === true)
    this.ctx = { job: g.job, round: g.round, group: g.hash, members: g.members, offsets: this.partition.offsets, lengths: this.partition.lengths }
    this.outcomes = g.members.map(() => new Deferred<PartOutcome>())
    this.audit = new AuditState(g.members.length)
    this.stages = new RoundStageMachine((from, to) => { service.log({ round: this.key, from, to }, 'all-reduce: stage') })
  }

  get aggregator (): PartAggregator<T> { return this.opts.aggregator }
  get stage (): RoundStage { return this.stages.stage }

  frameBase (part: number): { v: typeof ALLREDUCE_WIRE_VERSION, job: string, round: number, group: string, part: number, offset: number, elements: number } {
    return { v: ALLREDUCE_WIRE_VERSION, job: this.ctx.job, round: this.ctx.round, group: this.ctx.group, part, offset: this.partition.offsets[part], elements: this.partition.lengths[part] }
  }

  slice (part: number): Float32Array {
    const off = this.partition.offsets[part]
    return this.opts.vector.subarray(off, off + this.partition.lengths[part])
  }

  /** What this peer sends for `part`: the encode step's payload, or the part encoded here. */
  payload (part: number): Uint8Array {
    return this.opts.payloads?.[part] ?? this.aggregator.encodeContribution(this.slice(part), this.opts.weight)
  }

  /** Parts whose place in {@link result} holds a received contribution until the part is reduced. */
  private readonly lent = new Set<number>()

  /**
   * Decodes a contribution to `part` received from a member: into the place of the part's result when this
   * peer is collecting its own part and that place is free (once per part: the reduction then writes the
   * result over it, reading each value before writing it), else into a new array.
   */
  decodeContribution (part: number, payload: Uint8Array): T {
    const elements = this.partition.lengths[part]
    const into = this.aggregator.decodeContributionInto
    if (into != null && part === this.selfIndex && this.collectors.get(part)?.open === true && !this.lent.has(part)) {
      this.lent.add(part)
      return into(payload, this.resultSlot(part))
    }
    return this.aggregator.decodeContribution(payload, elements)
  }

  /** Where `part` lies in {@link result}. */
  resultSlot (part: number): Float32Array {
    const off = this.partition.offsets[part]
    return this.result.subarray(off, off + this.partition.lengths[part])
  }

  /**
   * This peer's own contribution to `part`, as a remote one would be decoded: from the encode step's decoded
   * values when it passed them (and the aggregator can take them), else decoded from the payload.
   */
  ownContribution (part: number): WireContribution<T> {
    const { payloads, decoded } = this.opts
    const from = this.aggregator.fromDecoded
    if (payloads != null && decoded != null && from != null) {
      const off = this.partition.offsets[part]
      return { peer: this.self, weight: this.opts.weight, value: from(decoded.subarray(off, off + this.partition.lengths[part])) }
    }
    return { peer: this.self, weight: this.opts.weight, value: this.aggregator.decodeContribution(this.payload(part), this.partition.lengths[part]) }
  }

  /** SHA-256 of the contribution of `peer` to `part` as this peer has it (its own, or one it received), when audits are on. */
  inputDigest (part: number, peer: string): string | undefined {
    if (!this.service.auditing) return undefined
    return peer === this.self ? this.audit.ownDigest(part, () => this.payload(part)) : this.audit.input(part, peer)
  }

  count (peer: string, sent: number, received: number): void {
    const t = this.traffic.get(peer) ?? { sent: 0, received: 0 }
    t.sent += sent
    t.received += received
    this.traffic.set(peer, t)
  }

  drop (peer: string): void {
    if (peer === this.self || this.dead.has(peer)) return
    this.dead.add(peer)
    for (const c of this.collectors.values()) c.check()
  }

  /** Expected bytes of one part on the wire (fp32 size: conservative for compressed codecs). */
  partBytes (part: number): number {
    return this.partition.lengths[part] * 4
  }

  /** How long a reducer waits for the contributions to `part`: each sender uploads n-1 parts at once. */
  collectTimeoutMs (part: number, from: Iterable<string>): number {
    const senders = [...from].filter(p => p !== this.self)
    const bytes = this.partBytes(part) * Math.max(1, this.members.length - 1)
    return this.service.speeds.slowestTimeoutMs(senders, bytes)
  }

  touch (peer: string): void {
    this.lastProgress.set(peer, this.service.clock.now())
  }

  /** Called by a collector that has all it will get: this peer's own part moves the round to `reducing`. */
  reducing (part: number): void {
    if (part === this.selfIndex) this.stages.advance(RoundStage.Reducing)
  }

  startCollector (part: number, expected: Set<string>, seed: Iterable<WireContribution<T>>): PartCollector<T> {
    const collector = new PartCollector(this, part, expected, this.collectTimeoutMs(part, expected))
    this.collectors.set(part, collector)
    void collector.done.promise.then(outcome => {
      this.outcomes[part].resolve(outcome)
      if (part === this.selfIndex) this.stages.advance(RoundStage.AwaitingResults)
    })
    for (const c of seed) collector.add(c)
    collector.add(this.ownContribution(part))
    return collector
  }

  /** The round's result is out; the session answers late requests until it closes. */
  done (): void {
    this.stages.advance(RoundStage.Done)
  }

  /** A result payload read into a buffer of the service's pool: given back by {@link releaseResults}. */
  pooledResult (payload: Uint8Array): void { this.pooledResults.push(payload) }

  /** `payload` is being sent to a member: it is never given back to the pool. */
  sending (payload: Uint8Array): void { this.relayed.add(payload) }

  /**
   * After a successful round has closed: every result read into a pooled buffer was decoded before the round
   * resolved, and none is read again, except those relayed (a stream may still hold them): the rest go back to
   * the pool. Not after a failed round: a read cut short by the abort could still be writing into its buffer.
   */
  releaseResults (): void {
    if (!this.stages.over || this.stage === RoundStage.Failed) return
    for (const payload of this.pooledResults) if (!this.relayed.has(payload)) this.service.pool.release(payload)
    this.pooledResults.length = 0
  }

  /** The round failed here (aborted, or an error); returns the stage it had reached. */
  fail (): RoundStage {
    const reached = this.stage
    this.stages.advance(RoundStage.Failed)
    this.close()
    return reached
  }

  close (): void {
    this.stages.advance(RoundStage.Closed)
    for (const c of this.collectors.values()) c.cancel()
    // Inbound streams still waiting on a part get an 'unavailable' answer instead of hanging.
    for (const h of this.audit.held) h.resolve(null)
    this.outcomes.forEach((o, part) => {
      o.resolve({ header: { ...this.frameBase(part), type: 'result', reducer: this.self, contributors: [{ peer: this.self, weight: this.opts.weight }] }, payload: new Uint8Array(0), localOnly: true })
    })
  }
}
