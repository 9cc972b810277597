/**
 * What an all-reduce of a round's group is, apart from how the butterfly does it: the host it needs, what a
 * member passes in (its vector, or the payloads the encode step made of it) and what it gets back (the
 * reduced vector and the record of who is in it). The round's averager depends on {@link GroupAllReduce}
 * only, so tests give it an in-memory one.
 */
import type { AbortOptions, DialProtocolOptions, PeerId, Stream, StreamHandler, StreamHandlerOptions } from '@libp2p/interface'
import type { Clock } from '../time/clock.ts'
import type { PartAggregator, PartMeta } from './combine.ts'
import type { RoundGroup } from './group.ts'
import type { TimeoutPolicy } from './timeouts.ts'
import type { BufferPool } from '../memory/buffer-pool.ts'

/** The part of a libp2p node the all-reduce uses (a `Libp2p` fits). */
export interface AllReduceHost {
  peerId: PeerId
  handle: (protocol: string, handler: StreamHandler, options?: StreamHandlerOptions) => Promise<void>
  unhandle: (protocol: string, options?: AbortOptions) => Promise<void>
  dialProtocol: (peer: PeerId, protocol: string, options?: DialProtocolOptions) => Promise<Stream>
}

/** A pino logger fits. */
export interface AllReduceLogger {
  debug: (obj: object, msg?: string) => void
  /** Optional: a reducer caught lying is logged here (at debug otherwise). */
  warn?: (obj: object, msg?: string) => void
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
  /**
   * Where the payloads a reducer receives are read into and given back once decoded, round after round (share
   * the encode step's pool). Default: a pool of its own.
   */
  bufferPool?: BufferPool
  /**
   * Reducer audits (audit.ts): after the results, each part's auditor tells every member what the part's result
   * is, recomputing it with probability `rate`. `false` turns the audit phase off, which every member of a
   * group must agree on (a member that audits waits for verdicts the others never send).
   */
  audit?: AuditOptions | false
  /** Test-only faults injected into the production path. */
  testing?: AllReduceTestHooks
}

export interface AuditOptions {
  /**
   * Probability that this peer recomputes a part it is the auditor of (default {@link DEFAULT_AUDIT_RATE}). Local:
   * members need not agree on it, and a reducer cannot know whether its part will be recomputed.
   */
  rate?: number
  /** Draws in [0, 1) for the audit coin (default Math.random). */
  random?: () => number
}

/** About one part in ten is recomputed: a reducer that lies every round is caught within 10 rounds with p ≈ 0.65, 30 with p ≈ 0.96. */
export const DEFAULT_AUDIT_RATE = 0.1

export interface AllReduceTestHooks {
  /** Replaces the result payload this peer sends for a part it reduced (a lying reducer). */
  corruptResult?: (part: number, payload: Uint8Array) => Uint8Array
}

export interface RunOptions<T> {
  group: RoundGroup
  /**
   * This peer's update: `group.vectorLength` floats. Not modified. A part nobody could reduce keeps these
   * values in the result.
   */
  vector: Float32Array
  /**
   * What this peer sends for each part (index = part), as `aggregator.encodeContribution` would encode the
   * part's slice of `vector`: the encode step's output, so no part is encoded twice. Absent: the all-reduce
   * encodes each part itself.
   */
  payloads?: readonly Uint8Array[]
  /**
   * What `payloads` decode to, at the parts' offsets (the encode step's `decoded`): with an aggregator that has
   * `fromDecoded`, this peer's own contributions are taken from it instead of decoding its payloads again.
   * Ignored without `payloads`.
   */
  decoded?: Float32Array
  /** Its weight (samples processed this round). */
  weight: number
  /**
   * Called once `vector`, `payloads` and `decoded` are read no more: the round's session has closed (after it
   * lingered for late requests) after a successful run in which no member was dropped, and no audit fetch is
   * still sending a payload. Not called otherwise: a stream cut short might still hold a slice of them, so they
   * are left to the garbage collector. The encode step's `release` goes here.
   */
  releasePayloads?: () => void
  /**
   * Where the reduced vector is assembled and returned as `vector` (`group.vectorLength` floats; every value is
   * overwritten). Default: a new array. Nothing writes into it once `run` has resolved; after a failed run a
   * late decode may still land in it, so a caller that reuses arrays reuses only those of successful runs.
   */
  into?: Float32Array
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
  /** As the reducer listed them; `digest`: SHA-256 of the contribution payload it combined. */
  contributors: Array<{ peer: string, weight: number, digest?: string }>
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
  /** Members left out of this round because they were caught lying about a part's result in an earlier one. */
  excluded?: string[]
  /** What the audit phase found (null or absent: audits are off, or a group of one). */
  audit?: AuditReport | null
}

/** A reducer caught lying: the record a round's report carries (and the contributions table may use). */
export interface ReducerFault {
  part: number
  /** The member whose result (or listing of inputs) was wrong. */
  reducer: string
  /**
   * wrong-result: the part recomputed from the inputs the reducer listed differs from the result it sent;
   * misreported-input: it listed this peer's contribution with another digest or weight than this peer sent.
   */
  kind: 'wrong-result' | 'misreported-input'
  /** The peer whose audit first flagged it (the part's auditor, or this peer). */
  detectedBy: string
  /** SHA-256 of the result payload received from the reducer, and of the recomputed one. */
  received?: string
  recomputed?: string
}

export interface AuditReport {
  faults: ReducerFault[]
  /** Parts this peer recomputed: as their auditor, or because a verdict differed from its copy. */
  recomputed: number[]
  /** Parts whose auditor sent no verdict in time (gone, or slow): their results stand unaudited here. */
  missingVerdicts: number[]
  /** Audits that could not conclude: an input could not be had, or differs from the reducer's listing. */
  inconclusive: Array<{ part: number, reason: string }>
  /** Wire bytes of the audit phase (verdicts, fetched contributions), included in the round's traffic. */
  bytesSent: number
  bytesReceived: number
  /** From the last part's result to the last verdict: what the audit adds to the round here. */
  durationMs: number
}

/** An all-reduce of a round's group (`ButterflyAllReduce` is the one that runs). */
export interface GroupAllReduce {
  start: () => Promise<void>
  stop: () => Promise<void>
  /** Reduces `vector` (or `payloads`) with the rest of the group; resolves when every part is in or given up on. */
  run: <T>(opts: RunOptions<T>) => Promise<AllReduceResult>
}
