/**
 * The round's averaging step over the network: matchmaking on the job's ready topic forms the group, the
 * butterfly all-reduce averages the pseudo-gradients, weighted by samples, through the job's codec.
 *
 * The matchmaking window adapts to the job: peers finish their inner steps at different times, so the window
 * is a fraction of the measured training time (with a floor and a cap) rather than a fixed constant; a peer
 * that finishes outside it is left out of this round and catches up from the announced state.
 */
import type { Logger } from 'pino'
import { ButterflyAllReduce, Matchmaking, partitionGroup, plaintextAggregator, weightedMean, type AllReduceHost, type Partition, type ReadyPubSub } from '../allreduce/index.ts'
import type { VectorCodec } from '../compression/codec.ts'
import type { AveragedUpdate, LocalUpdate, RoundAverager } from './steps.ts'
import { RoundFailedError } from './round-loop.ts'

export interface MatchWindowPolicy {
  floorMs: number
  capMs: number
  /** Window = fraction × (EWMA of this peer's training time per round). */
  fraction: number
}

export const DEFAULT_MATCH_WINDOW: MatchWindowPolicy = { floorMs: 2_000, capMs: 60_000, fraction: 0.5 }

export interface AllReduceAveragerOptions {
  job: string
  host: AllReduceHost
  pubsub: ReadyPubSub
  peerId: string
  codec: VectorCodec
  logger: Logger
  window?: Partial<MatchWindowPolicy>
  /** Compensate quantisation error across rounds (recommended for lossy codecs). */
  errorFeedback?: boolean
  now?: () => number
}

export class AllReduceAverager implements RoundAverager {
  private readonly matchmaking: Matchmaking
  private readonly butterfly: ButterflyAllReduce
  private readonly window: MatchWindowPolicy
  private readonly now: () => number
  private trainEwmaMs?: number
  private lastAverageAt?: number
  private residual?: Float32Array
  private speedBps = 50e6

  constructor (private readonly opts: AllReduceAveragerOptions) {
    this.matchmaking = new Matchmaking({ pubsub: opts.pubsub, peerId: opts.peerId })
    this.butterfly = new ButterflyAllReduce({ host: opts.host, logger: opts.logger.child({ component: 'allreduce' }) })
    this.window = { ...DEFAULT_MATCH_WINDOW, ...opts.window }
    this.now = opts.now ?? Date.now
  }

  async start (): Promise<void> {
    this.matchmaking.join(this.opts.job)
    await this.butterfly.start()
  }

  async stop (): Promise<void> {
    this.matchmaking.stop()
    await this.butterfly.stop()
  }

  /** Called by the trainer's wrapper with the time the inner steps took, to size the next window. */
  observeTrainingTime (ms: number): void {
    this.trainEwmaMs = this.trainEwmaMs == null ? ms : 0.7 * this.trainEwmaMs + 0.3 * ms
  }

  matchWindowMs (): number {
    const adaptive = (this.trainEwmaMs ?? 0) * this.window.fraction
    return Math.min(this.window.capMs, Math.max(this.window.floorMs, adaptive))
  }

  async average (round: number, update: LocalUpdate, signal: AbortSignal): Promise<AveragedUpdate> {
    const n = update.pseudoGradient.length
    const deadline = this.now() + this.matchWindowMs()
    const { group, view, excluded } = await this.matchmaking.formGroup({
      job: this.opts.job, round, vectorLength: n, codec: this.opts.codec.id, speedBps: this.speedBps, deadline, signal
    })
    if (group == null) throw new RoundFailedError(`round ${round}: not in the group (saw ${view.length}, excluded ${excluded.length})`)
    const vector = this.opts.errorFeedback === true ? this.compensate(update.pseudoGradient, partitionGroup(group)) : update.pseudoGradient
    const result = await this.butterfly.run({
      group, vector, weight: update.samples, aggregator: plaintextAggregator(this.opts.codec, weightedMean), signal
    })
    if (result.durationMs > 0 && result.bytesSent > 0) this.speedBps = Math.max(1e6, result.bytesSent / (result.durationMs / 1000))
    this.lastAverageAt = this.now()
    return {
      average: result.vector,
      contributions: result.contributors.filter(c => c.fraction > 0).map(c => ({ peer: c.peer, samples: c.weight })),
      dropped: result.dropped,
      bytesSent: result.bytesSent,
      bytesReceived: result.bytesReceived
    }
  }

  /**
   * Error feedback: add what quantisation lost last round, then remember what it loses this round. The error
   * is measured on exactly the parts the butterfly will encode (same partition), so nothing is approximated.
   */
  private compensate (v: Float32Array, parts: Partition): Float32Array {
    const out = new Float32Array(v)
    if (this.residual?.length === v.length) for (let i = 0; i < v.length; i++) out[i] += this.residual[i]
    const residual = new Float32Array(v.length)
    parts.offsets.forEach((offset, k) => {
      const length = parts.lengths[k]
      const slice = out.subarray(offset, offset + length)
      const decoded = this.opts.codec.decode(this.opts.codec.encode(slice))
      for (let i = 0; i < length; i++) residual[offset + i] = slice[i] - decoded[i]
    })
    this.residual = residual
    return out
  }
}
