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

/** An all-reduce of a round's group (`ButterflyAllReduce` is the one that runs). */
export interface GroupAllReduce {
  start: () => Promise<void>
  stop: () => Promise<void>
  /** Reduces `vector` (or `payloads`) with the rest of the group; resolves when every part is in or given up on. */
  run: <T>(opts: RunOptions<T>) => Promise<AllReduceResult>
}
