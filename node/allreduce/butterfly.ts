/**
 * Butterfly all-reduce over `/nearai/allreduce/1.0.0`: the vector is split into one contiguous part per
 * group member; every member sends part i to member i, member i reduces its part with the round's
 * aggregator and sends the result back to every member, and each member assembles the full result.
 * No peer ever holds another peer's whole update.
 *
 * Faults: a member that cannot be reached, refuses, or goes silent is dropped. Parts whose reducer was
 * dropped are re-collected by a stand-in, the next live member in ring order, from the survivors (who
 * still hold their own contributions). A member asked to stand in for a part it already holds the
 * result of relays that result, so members converge on the same bytes.
 *
 * Timeouts adapt to each peer (see timeouts.ts): a reducer waits for contributions until a deadline
 * sized from the senders' measured throughput (EWMA across rounds), and past it only for senders whose
 * bytes are still arriving; a member waits for its reducer as long as bytes or heartbeats keep coming
 * (silence longer than floor + multiplier × latency is a stall), up to the policy's ceiling.
 *
 * One stream per (member, part): the member sends a `contribute` header, waits for `accept` (or
 * `reject`), sends the payload, half-closes, and reads `wait` heartbeats then one `result` (or
 * `reject`) frame.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { AbortOptions, Connection, PeerId, Stream, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import {
  ALLREDUCE_PROTOCOL, ALLREDUCE_WIRE_VERSION, encodeFrame, validateFrameHeader,
  type AcceptHeader, type WaitHeader, type ContributeHeader, type FrameContext, type FrameHeader, type RejectHeader, type RejectReason, type ResultHeader
} from '../../protocol/allreduce.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { sleep, systemClock, TimeoutError, timeoutSignal, type Clock } from '../time/clock.ts'
import { StallTimer } from './stall-timer.ts'
import { inCanonicalOrder, type PartAggregator, type PartMeta, type WireContribution } from './combine.ts'
import { partitionGroup, type RoundGroup } from './group.ts'
import type { Partition } from './partition.ts'
import { PeerSpeedTracker, type TimeoutPolicy } from './timeouts.ts'
import { FrameReader, writeFrame, writeHeader, writePayload } from './wire.ts'

/** The part of a libp2p node the all-reduce uses (a `Libp2p` fits). */
export interface AllReduceHost {
  peerId: PeerId
  handle: (protocol: string, handler: StreamHandler, options?: StreamHandlerOptions) => Promise<void>
  unhandle: (protocol: string, options?: AbortOptions) => Promise<void>
  dialProtocol: (peer: PeerId, protocol: string, options?: AbortOptions) => Promise<Stream>
}

/** A pino logger fits. */
export interface AllReduceLogger {
  debug: (obj: object, msg?: string) => void
}

export interface AllReduceComponents {
  host: AllReduceHost
  clock?: Clock
  logger?: AllReduceLogger
}

export interface AllReduceInit {
  /** Adaptive timeout policy (floor, multiplier, EWMA weight, defaults before a peer is measured). */
  timeouts?: Partial<TimeoutPolicy>
  /** How long an inbound contribution may wait for this peer's own round to begin (default: the timeout floor). */
  sessionWaitMs?: number
  /** How long a finished round keeps answering late requests (default: the timeout floor). */
  lingerMs?: number
  /** Inbound streams of this protocol per connection. */
  maxInboundStreams?: number
  /** Inbound streams waiting for a round that has not begun here, in all. */
  maxPendingInbound?: number
}

export interface RunOptions<T> {
  group: RoundGroup
  /** This peer's update: `group.vectorLength` floats. Not modified. */
  vector: Float32Array
  /** Its weight (samples processed this round). */
  weight: number
  /** Encoding and combine rule of the round, e.g. `plaintextAggregator(codec, weightedMean)`. */
  aggregator: PartAggregator<T>
  /** Split parts by announced speeds instead of equally (every member must pass the same). */
  balanceBySpeed?: boolean
  signal?: AbortSignal
}

export interface PartReport {
  index: number
  offset: number
  elements: number
  /** The member that was to reduce it. */
  reducer: string
  /** The member that did (differs when a stand-in took over). */
  reducedBy: string | null
  standIn: boolean
  contributors: Array<{ peer: string, weight: number }>
  meta?: PartMeta
  /** No member could provide the part: it holds this peer's own values only. */
  localOnly: boolean
}

export interface ContributorRecord {
  peer: string
  weight: number
  /** Elements of the vector (summed over parts) whose average includes this peer. */
  elements: number
  /** elements / vector length: 1 for a peer in every part. */
  fraction: number
}

export interface AllReduceResult {
  /** The reduced vector. */
  vector: Float32Array
  group: RoundGroup
  parts: PartReport[]
  /** The accepted-samples record: who is in the average, with what weight and over how much of the vector. */
  contributors: ContributorRecord[]
  /** Members dropped from the round (unreachable, refused, stalled). */
  dropped: string[]
  standIns: Array<{ part: number, failed: string, standIn: string }>
  /** Wire bytes exchanged with each peer. */
  traffic: Array<{ peer: string, sent: number, received: number }>
  bytesSent: number
  bytesReceived: number
  durationMs: number
  /** Every part was reduced by some member (none fell back to local values). */
  complete: boolean
  /** Frames refused as malformed, foreign or out of place during the round. */
  rejectedFrames: number
}

interface PartOutcome {
  header: ResultHeader
  payload: Uint8Array
  /** Nobody could reduce the part; there is nothing to relay. */
  localOnly?: boolean
}

class Deferred<T> {
  readonly promise: Promise<T>
  resolve!: (value: T) => void
  settled = false
  constructor () {
    this.promise = new Promise<T>(resolve => { this.resolve = (v) => { if (!this.settled) { this.settled = true; resolve(v) } } })
  }
}

class RejectedError extends Error {
  override name = 'RejectedError'
  constructor (readonly reason: RejectReason, message: string) { super(message) }
}

/** The contributions to one part that this peer reduces: its own part, or a part it stands in for. */
class PartCollector<T> {
  readonly received = new Map<string, WireContribution<T>>()
  readonly done = new Deferred<PartOutcome>()
  private timer: unknown
  private finishing = false

  constructor (
    private readonly session: RoundSession<T>,
    readonly part: number,
    readonly expected: ReadonlySet<string>,
    timeoutMs: number
  ) {
    this.timer = session.clock.setTimeout(() => { this.onDeadline() }, timeoutMs)
  }

  /**
   * At the deadline, a contributor whose bytes are still arriving is slow, not gone: wait on, re-checking
   * within its stall window. Members that never started, or went silent, are dropped.
   */
  private onDeadline (): void {
    if (this.done.settled || this.finishing) return
    const s = this.session
    const now = s.clock.now()
    let recheck = Infinity
    for (const p of this.expected) {
      if (this.received.has(p) || s.dead.has(p)) continue
      const last = s.lastProgress.get(p)
      const window = s.service.speeds.stallMs(p)
      if (last != null && now - last < window) recheck = Math.min(recheck, window - (now - last))
    }
    if (recheck === Infinity) this.finish()
    else this.timer = s.clock.setTimeout(() => { this.onDeadline() }, Math.max(10, recheck))
  }

  add (c: WireContribution<T>): boolean {
    if (this.done.settled || this.finishing || this.received.has(c.peer)) return false
    this.received.set(c.peer, c)
    this.check()
    return true
  }

  /** Finishes once every expected member that is not known dead has contributed. */
  check (): void {
    if (this.done.settled || this.finishing) return
    for (const p of this.expected) if (!this.received.has(p) && !this.session.dead.has(p)) return
    this.finish()
  }

  finish (): void {
    if (this.done.settled || this.finishing) return
    this.finishing = true
    this.session.clock.clearTimeout(this.timer)
    const s = this.session
    const contributions = inCanonicalOrder([...this.received.values()])
    const elements = s.partition.lengths[this.part]
    for (const p of this.expected) if (!this.received.has(p)) s.drop(p)
    const header: ResultHeader = {
      ...s.frameBase(this.part),
      type: 'result',
      reducer: s.self,
      contributors: contributions.map(c => ({ peer: c.peer, weight: c.weight }))
    }
    void (async () => {
      try {
        const reduced = await s.aggregator.reduce(contributions, elements)
        this.done.resolve({ header: { ...header, meta: reduced.meta }, payload: reduced.payload })
      } catch (err) {
        // A rule that fails leaves the part unreduced here; members fall back to a stand-in.
        s.service.log({ part: this.part, err: (err as Error).message }, 'all-reduce: reduction failed')
        this.done.resolve({ header, payload: new Uint8Array(0), localOnly: true })
      }
    })()
  }

  cancel (): void {
    this.session.clock.clearTimeout(this.timer)
  }
}

/** One round at this peer. */
class RoundSession<T> {
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
  closed = false
  /** run() has returned; the session only answers late requests until it closes. */
  finished = false
  /** Answers being written to members: the round is not over for this peer until they are delivered. */
  readonly answering = new Set<Promise<void>>()
  /** When bytes last arrived from each member (inactivity, not total time, decides who stalled). */
  readonly lastProgress = new Map<string, number>()

  constructor (
    readonly service: ButterflyAllReduce,
    readonly opts: RunOptions<T>,
    readonly clock: Clock
  ) {
    const g = opts.group
    this.key = sessionKey(g.job, g.round, g.hash)
    this.self = service.host.peerId.toString()
    this.members = g.members
    this.selfIndex = g.members.indexOf(this.self)
    if (this.selfIndex < 0) throw new RangeError('this peer is not a member of the group')
    if (opts.vector.length !== g.vectorLength) throw new RangeError(`vector has ${opts.vector.length} values, the group expects ${g.vectorLength}`)
    if (!Number.isFinite(opts.weight) || opts.weight < 0) throw new RangeError(`bad weight ${opts.weight}`)
    this.partition = partitionGroup(g, opts.balanceBySpeed === true)
    this.ctx = { job: g.job, round: g.round, group: g.hash, members: g.members, offsets: this.partition.offsets, lengths: this.partition.lengths }
    this.outcomes = g.members.map(() => new Deferred<PartOutcome>())
  }

  get aggregator (): PartAggregator<T> { return this.opts.aggregator }

  frameBase (part: number): { v: typeof ALLREDUCE_WIRE_VERSION, job: string, round: number, group: string, part: number, offset: number, elements: number } {
    return { v: ALLREDUCE_WIRE_VERSION, job: this.ctx.job, round: this.ctx.round, group: this.ctx.group, part, offset: this.partition.offsets[part], elements: this.partition.lengths[part] }
  }

  slice (part: number): Float32Array {
    const off = this.partition.offsets[part]
    return this.opts.vector.subarray(off, off + this.partition.lengths[part])
  }

  /** This peer's own contribution to `part`, encoded and decoded exactly as a remote one would be. */
  ownContribution (part: number): WireContribution<T> {
    const payload = this.aggregator.encodeContribution(this.slice(part), this.opts.weight)
    return { peer: this.self, weight: this.opts.weight, value: this.aggregator.decodeContribution(payload, this.partition.lengths[part]) }
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
    this.lastProgress.set(peer, this.clock.now())
  }

  startCollector (part: number, expected: Set<string>, seed: Iterable<WireContribution<T>>): PartCollector<T> {
    const collector = new PartCollector(this, part, expected, this.collectTimeoutMs(part, expected))
    this.collectors.set(part, collector)
    void collector.done.promise.then(outcome => { this.outcomes[part].resolve(outcome) })
    for (const c of seed) collector.add(c)
    collector.add(this.ownContribution(part))
    return collector
  }

  close (): void {
    this.closed = true
    for (const c of this.collectors.values()) c.cancel()
    // Inbound streams still waiting on a part get an 'unavailable' answer instead of hanging.
    this.outcomes.forEach((o, part) => {
      o.resolve({ header: { ...this.frameBase(part), type: 'result', reducer: this.self, contributors: [{ peer: this.self, weight: this.opts.weight }] }, payload: new Uint8Array(0), localOnly: true })
    })
  }
}

const DIAL_ATTEMPTS = 3
const DIAL_RETRY_MS = 100

/** Sessions are keyed by group too: a round retried with another group is another session. */
export function sessionKey (job: string, round: number, group: string): string {
  return `${job}#${round}#${group}`
}

export class ButterflyAllReduce {
  readonly host: AllReduceHost
  readonly speeds: PeerSpeedTracker
  readonly stats = { rejectedFrames: 0, inboundStreams: 0 }
  private readonly clock: Clock
  private readonly logger?: AllReduceLogger
  private readonly sessions = new Map<string, RoundSession<any>>()
  private readonly waiting = new Map<string, Set<() => void>>()
  private pendingInbound = 0
  private readonly sessionWaitMs: number
  private readonly lingerMs: number
  private readonly maxInboundStreams: number
  private readonly maxPendingInbound: number
  private started = false

  log (obj: object, msg: string): void { this.logger?.debug(obj, msg) }

  constructor (components: AllReduceComponents, init: AllReduceInit = {}) {
    this.host = components.host
    this.clock = components.clock ?? systemClock
    this.logger = components.logger
    this.speeds = new PeerSpeedTracker(init.timeouts)
    this.sessionWaitMs = init.sessionWaitMs ?? this.speeds.policy.floorMs
    this.lingerMs = init.lingerMs ?? this.speeds.policy.floorMs
    this.maxInboundStreams = init.maxInboundStreams ?? 64
    this.maxPendingInbound = init.maxPendingInbound ?? 1024
  }

  async start (): Promise<void> {
    if (this.started) return
    await this.host.handle(ALLREDUCE_PROTOCOL, (stream, connection) => { void this.onStream(stream, connection) }, {
      maxInboundStreams: this.maxInboundStreams,
      maxOutboundStreams: this.maxInboundStreams
    })
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.host.unhandle(ALLREDUCE_PROTOCOL)
    for (const s of this.sessions.values()) s.close()
    this.sessions.clear()
  }

  /** Averages `vector` with the rest of `group`. Resolves when every part is in (or given up on). */
  async run<T> (opts: RunOptions<T>): Promise<AllReduceResult> {
    if (!this.started) throw new Error('ButterflyAllReduce is not started')
    const startedAt = this.clock.now()
    const session = new RoundSession<T>(this, opts, this.clock)
    if (this.sessions.has(session.key)) throw new Error(`round ${session.key} is already running`)
    const g = opts.group
    g.members.forEach((m, i) => { const s = g.speedBps?.[i]; if (s != null && s > 0) this.speeds.hint(m, s) })
    this.sessions.set(session.key, session)
    for (const wake of this.waiting.get(session.key) ?? []) wake()
    this.waiting.delete(session.key)

    let reports: Array<{ report: PartReport, values: Float32Array | null }>
    try {
      session.startCollector(session.selfIndex, new Set(g.members), [])
      reports = await Promise.all(g.members.map(async (_m, part) => await this.obtainPart(session, part)))
      await Promise.allSettled([...session.answering])
    } catch (err) {
      this.sessions.delete(session.key)
      session.close()
      throw err
    }

    const vector = new Float32Array(g.vectorLength)
    for (const r of reports) {
      if (r.values != null) vector.set(r.values, r.report.offset)
      else vector.set(session.slice(r.report.index), r.report.offset)
    }
    const durationMs = this.clock.now() - startedAt
    session.finished = true
    const linger = this.clock.setTimeout(() => {
      if (this.sessions.get(session.key) === session) this.sessions.delete(session.key)
      session.close()
    }, this.lingerMs)
    // Answering late requests is no reason to keep a process alive.
    ;(linger as { unref?: () => void } | undefined)?.unref?.()

    const parts = reports.map(r => r.report)
    const byPeer = new Map<string, ContributorRecord>()
    for (const p of parts) {
      for (const c of p.contributors) {
        const rec = byPeer.get(c.peer) ?? { peer: c.peer, weight: c.weight, elements: 0, fraction: 0 }
        rec.elements += p.elements
        byPeer.set(c.peer, rec)
      }
    }
    const contributors = inCanonicalOrder([...byPeer.values()]).map(r => ({ ...r, fraction: g.vectorLength > 0 ? r.elements / g.vectorLength : 1 }))
    const traffic = [...session.traffic].map(([peer, t]) => ({ peer, ...t })).sort((a, b) => (a.peer < b.peer ? -1 : 1))
    return {
      vector,
      group: g,
      parts,
      contributors,
      // Dropped: failed during the round, or missing from part of the average.
      dropped: g.members.filter(m => session.dead.has(m) || (byPeer.get(m)?.elements ?? 0) < g.vectorLength),
      standIns: session.standIns,
      traffic,
      bytesSent: traffic.reduce((a, t) => a + t.sent, 0),
      bytesReceived: traffic.reduce((a, t) => a + t.received, 0),
      durationMs,
      complete: parts.every(p => !p.localOnly),
      rejectedFrames: session.rejectedFrames
    }
  }

  /** Gets part `part` reduced: by this peer, by its reducer, or by a stand-in in ring order. */
  private async obtainPart<T> (session: RoundSession<T>, part: number): Promise<{ report: PartReport, values: Float32Array | null }> {
    const n = session.members.length
    const reducer = session.members[part]
    const elements = session.partition.lengths[part]
    let outcome: PartOutcome | null = null
    for (let k = 0; k < n && outcome == null; k++) {
      const candidate = session.members[(part + k) % n]
      if (session.dead.has(candidate)) continue
      if (candidate === session.self) {
        if (k > 0 && !session.collectors.has(part)) {
          const expected = new Set(session.members.filter(m => m !== reducer && !session.dead.has(m)))
          session.startCollector(part, expected, session.pendingStandIn.get(part)?.values() ?? [])
          session.pendingStandIn.delete(part)
        }
        outcome = await session.outcomes[part].promise
        if (outcome.localOnly === true) outcome = null
        break
      }
      try {
        outcome = await this.request(session, candidate, part, k > 0)
      } catch (err) {
        session.opts.signal?.throwIfAborted()
        this.logger?.debug({ part, candidate, err: (err as Error).message }, 'all-reduce: member failed for a part')
        session.drop(candidate)
      }
    }
    // A relayed result for a part this peer was asked to stand in for: pass it on.
    if (outcome != null) session.outcomes[part].resolve(outcome)
    if (outcome != null && outcome.header.reducer !== reducer) session.standIns.push({ part, failed: reducer, standIn: outcome.header.reducer })
    const report: PartReport = {
      index: part,
      offset: session.partition.offsets[part],
      elements,
      reducer,
      reducedBy: outcome?.header.reducer ?? null,
      standIn: outcome != null && outcome.header.reducer !== reducer,
      contributors: outcome?.header.contributors ?? [{ peer: session.self, weight: session.opts.weight }],
      meta: outcome?.header.meta,
      localOnly: outcome == null
    }
    if (outcome == null) {
      // Nobody could reduce it: the caller still gets a full vector, and the report says so.
      session.outcomes[part].resolve({ header: { ...session.frameBase(part), type: 'result', reducer: session.self, contributors: report.contributors }, payload: new Uint8Array(0), localOnly: true })
      return { report, values: null }
    }
    return { report, values: session.aggregator.decodeResult(outcome.payload, elements) }
  }

  /** Sends this peer's contribution to `part` to `to` and reads back the part's result. */
  private async request<T> (session: RoundSession<T>, to: string, part: number, standIn: boolean): Promise<PartOutcome> {
    // Silence, not size, decides: the reducer sends heartbeats while it waits for the others, so a member
    // waits as long as bytes or heartbeats keep coming, up to the policy's ceiling.
    const ceiling = this.speeds.policy.ceilingMs
    const capped = timeoutSignal(ceiling, `part ${part} from ${to} took longer than ${ceiling} ms`, { clock: this.clock, signal: session.opts.signal })
    const silence = new AbortController()
    const signal = AbortSignal.any([capped.signal, silence.signal])
    const stallMs = this.speeds.stallMs(to)
    // Until it accepts, the reducer may be waiting (bounded) for its own round to begin.
    // Bytes from the same peer on any stream (its contributions to our part) also show it is alive.
    const stall = new StallTimer(this.clock, stallMs + this.sessionWaitMs, (ms) => { silence.abort(new TimeoutError(`${to} silent for ${ms} ms on part ${part}`)) }, () => session.lastProgress.get(to))
    const clear = (): void => { capped.clear(); stall.clear() }
    let stream: Stream | undefined
    const onAbort = (): void => { stream?.abort(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason))) }
    signal.addEventListener('abort', onAbort, { once: true })
    const started = performance.now()
    try {
      const payload = session.aggregator.encodeContribution(session.slice(part), session.opts.weight)
      stream = await this.dial(to, signal)
      const reader = new FrameReader(stream, () => { stall.touch() })
      const answerTo = <H extends FrameHeader>(types: Array<H['type']>) => (h: FrameHeader): H => {
        if (!(types as string[]).includes(h.type)) throw new InvalidMessageError(`unexpected ${h.type} frame from ${to}`)
        validateFrameHeader(h, session.ctx, to)
        if (h.part !== part) throw new InvalidMessageError(`answer for part ${h.part} from ${to}, asked for ${part}`)
        return h as H
      }
      // Handshake: the header first; the payload only once the reducer has taken it.
      const header: ContributeHeader = { ...session.frameBase(part), type: 'contribute', from: session.self, weight: session.opts.weight, standIn }
      const headerBytes = await writeHeader(stream, header, signal)
      const go = await reader.readFrame<AcceptHeader | RejectHeader>({ accept: answerTo<AcceptHeader | RejectHeader>(['accept', 'reject']), maxPayload: () => 0 })
      session.count(to, headerBytes, go.bytes)
      if (go.header.type === 'reject') throw new RejectedError(go.header.reason, go.header.message)
      stall.setWindow(stallMs)
      const sent = headerBytes + await writePayload(stream, payload, signal, () => { stall.touch() })
      session.count(to, sent - headerBytes, 0)
      await stream.close({ signal })
      let frame
      for (;;) {
        frame = await reader.readFrame<WaitHeader | ResultHeader | RejectHeader>({
          accept: answerTo<WaitHeader | ResultHeader | RejectHeader>(['wait', 'result', 'reject']),
          maxPayload: (h) => h.type === 'result' ? session.aggregator.maxResultBytes(session.partition.lengths[part]) : 0
        })
        session.count(to, 0, frame.bytes)
        if (frame.header.type !== 'wait') break
      }
      if (frame.header.type === 'reject') throw new RejectedError(frame.header.reason, frame.header.message)
      // The whole exchange (upload, the reducer's wait for the others, download) as one sample: it can only
      // underestimate the reducer's speed, which errs towards waiting longer, never towards a false drop.
      this.speeds.observeTransfer(to, sent + frame.bytes, performance.now() - started)
      this.speeds.observeGap(to, stall.longestGap)
      // Check the payload decodes before accepting the part from this member.
      session.aggregator.decodeResult(frame.payload, session.partition.lengths[part])
      return { header: frame.header as ResultHeader, payload: frame.payload }
    } catch (err) {
      if (err instanceof InvalidMessageError) session.rejectedFrames++
      stream?.abort(err as Error)
      throw err
    } finally {
      clear()
      signal.removeEventListener('abort', onAbort)
    }
  }

  /** Opens a stream to `to`; a dial that fails fast is tried again (briefly) before the peer is given up on. */
  private async dial (to: string, signal: AbortSignal): Promise<Stream> {
    const peer = peerIdFromString(to)
    for (let attempt = 1; ; attempt++) {
      const started = this.clock.now()
      try {
        const stream = await this.host.dialProtocol(peer, ALLREDUCE_PROTOCOL, { signal })
        this.speeds.observeLatency(to, this.clock.now() - started)
        return stream
      } catch (err) {
        if (signal.aborted || attempt >= DIAL_ATTEMPTS) throw err
        await sleep(DIAL_RETRY_MS * attempt, { clock: this.clock, signal })
      }
    }
  }

  /** Waits (bounded) for this peer's own session of a round to begin. */
  private async sessionFor (key: string): Promise<RoundSession<any> | undefined> {
    const existing = this.sessions.get(key)
    if (existing != null || this.pendingInbound >= this.maxPendingInbound) return existing
    this.pendingInbound++
    try {
      await new Promise<void>(resolve => {
        const set = this.waiting.get(key) ?? new Set()
        this.waiting.set(key, set)
        const wake = (): void => { this.clock.clearTimeout(timer); set.delete(wake); if (set.size === 0 && this.waiting.get(key) === set) this.waiting.delete(key); resolve() }
        const timer = this.clock.setTimeout(wake, this.sessionWaitMs)
        set.add(wake)
      })
    } finally {
      this.pendingInbound--
    }
    return this.sessions.get(key)
  }

  /** Writes a part's result to a member, within a timeout derived from that member's measured speed. */
  private async answer (s: RoundSession<any>, stream: Stream, remote: string, outcome: PartOutcome): Promise<void> {
    const controller = new AbortController()
    const stall = new StallTimer(this.clock, this.speeds.stallMs(remote), (ms) => {
      controller.abort(new TimeoutError(`${remote} took no bytes of part ${outcome.header.part}'s result for ${ms} ms`))
    })
    try {
      const sent = await writeFrame(stream, outcome.header, outcome.payload, controller.signal, () => { stall.touch() })
      s.count(remote, sent, 0)
      await stream.close({ signal: controller.signal })
    } finally {
      stall.clear()
    }
  }

  private async onStream (stream: Stream, connection: Connection): Promise<void> {
    this.stats.inboundStreams++
    const remote = connection.remotePeer.toString()
    let session: RoundSession<any> | undefined
    let header: ContributeHeader | undefined
    let stopHeartbeat = (): void => {}
    const reader = new FrameReader(stream, () => { session?.touch(remote) })
    try {
      const { header: h, bytes: headerBytes } = await reader.readHeader<ContributeHeader>(async (h) => {
          if (h.type !== 'contribute') throw new InvalidMessageError(`expected a contribute frame, got ${h.type}`)
          header = h
          // A round running here with another group will not change its mind: refuse at once.
          const running = (): RoundSession<any> | undefined => [...this.sessions.values()].find(s => s.ctx.job === h.job && s.ctx.round === h.round && s.ctx.group !== h.group && !s.finished)
          const waited = !this.sessions.has(sessionKey(h.job, h.round, h.group))
          // While it waits for the round to begin here, the stream is paused: what the sender pushes meanwhile
          // stays within the muxer's bounded buffers instead of piling up in memory.
          if (waited) stream.pause()
          session = running() == null ? await this.sessionFor(sessionKey(h.job, h.round, h.group)) : undefined
          if (waited && stream.readStatus === 'paused') stream.resume()
          if (session == null || session.closed) {
            const sameRound = running()
            if (sameRound != null) {
              // Our view of the round's group differs: count it against the round we are running.
              sameRound.rejectedFrames++
              this.stats.rejectedFrames++
              throw new RejectedError('group-mismatch', `round ${h.job}#${h.round} runs here with another group`)
            }
            throw new RejectedError('no-session', `no round ${h.job}#${h.round} with this group here`)
          }
          validateFrameHeader(h, session.ctx, remote)
          return h
      })
      const s = session!
      const accepted = await writeFrame(stream, { ...s.frameBase(h.part), type: 'accept' }, new Uint8Array(0))
      // Heartbeats from the go-ahead until the result: while the payload arrives and while the part is
      // collected, the member can tell a reducer that waits from one that has stalled.
      const beatEvery = Math.max(50, Math.floor(this.speeds.stallMs(remote) / 3))
      const wait = encodeFrame({ ...s.frameBase(h.part), type: 'wait' }, new Uint8Array(0))
      let beat: unknown
      const heartbeat = (): void => {
        if (stream.writeStatus !== 'writable') return
        try { stream.send(wait); s.count(remote, wait.byteLength, 0) } catch { return }
        beat = this.clock.setTimeout(heartbeat, beatEvery)
      }
      beat = this.clock.setTimeout(heartbeat, beatEvery)
      stopHeartbeat = () => { this.clock.clearTimeout(beat) }
      const acceptedAt = performance.now()
      const payload = await reader.readPayload(s.aggregator.maxContributionBytes(h.elements), 'all-reduce contribute payload')
      s.count(remote, accepted, headerBytes + 4 + payload.byteLength)
      // From our go-ahead to the last byte, a round trip included: it errs on the slow side.
      this.speeds.observeTransfer(remote, payload.byteLength, performance.now() - acceptedAt)
      const contribution: WireContribution<unknown> = { peer: remote, weight: h.weight, value: s.aggregator.decodeContribution(payload, h.elements) }
      await reader.expectEnd()
      const collector = s.collectors.get(h.part)
      if (collector != null) {
        collector.add(contribution)
      } else if (h.part !== s.selfIndex) {
        // Asked to stand in before this peer found out the reducer failed: keep it for when (if) it does.
        const pending = s.pendingStandIn.get(h.part) ?? new Map()
        if (!pending.has(remote)) pending.set(remote, contribution)
        s.pendingStandIn.set(h.part, pending)
      }
      let outcome: PartOutcome
      try {
        outcome = await s.outcomes[h.part].promise
      } finally {
        stopHeartbeat()
      }
      if (outcome.localOnly === true) {
        throw new RejectedError('unavailable', `part ${h.part} could not be reduced`)
      }
      const answer = this.answer(s, stream, remote, outcome)
      s.answering.add(answer)
      try { await answer } finally { s.answering.delete(answer) }
    } catch (err) {
      stopHeartbeat()
      let reason: RejectReason | null = null
      if (err instanceof RejectedError) reason = err.reason
      else if (err instanceof InvalidMessageError) {
        reason = (err.details as { reason?: RejectReason } | undefined)?.reason ?? 'invalid'
        this.stats.rejectedFrames++
        if (session != null) session.rejectedFrames++
      }
      this.logger?.debug({ remote, err: (err as Error).message }, 'all-reduce: inbound stream refused')
      if (reason != null && header != null && stream.writeStatus === 'writable') {
        try {
          const reject: RejectHeader = {
            v: ALLREDUCE_WIRE_VERSION, job: header.job, round: header.round, group: header.group, part: header.part,
            offset: header.offset, elements: header.elements, type: 'reject', reason, message: (err as Error).message.slice(0, 512)
          }
          await writeFrame(stream, reject as FrameHeader, new Uint8Array(0))
          await stream.close()
          return
        } catch { /* fall through to abort */ }
      }
      stream.abort(err as Error)
    }
  }
}
