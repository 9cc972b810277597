/**
 * The round's averaging step over the network: matchmaking on the job's ready topic forms the group, the
 * butterfly all-reduce averages the pseudo-gradients, weighted by samples, through the job's codec.
 *
 * No fixed timeouts: the group closes as soon as every connected peer of the job is ready, so a round waits
 * for its slowest live peer; the window (a multiple of the measured training time, with a floor and a cap)
 * only bounds how long a stalled peer can hold the others. A peer that misses it is left out of this round
 * and catches up from the announced state.
 */
import type { Logger } from 'pino'
import { ButterflyAllReduce, Matchmaking, partitionGroup, plaintextAggregator, weightedMean, type AllReduceHost, type Partition, type ReadyGossip } from '../allreduce/index.ts'
import type { VectorCodec } from '../compression/codec.ts'
import type { AveragedUpdate, LocalUpdate, RoundAverager } from './steps.ts'
import { RoundFailedError } from './round-loop.ts'

export interface MatchWindowPolicy {
  floorMs: number
  capMs: number
  /** Window = fraction × (EWMA of this peer's training time per round), within [floorMs, capMs]. */
  fraction: number
}

/**
 * Generous on purpose: the group closes as soon as every connected peer of the job is ready, so the window
 * only costs time when a connected peer is stalled; too short a window splits rounds between peers whose
 * speeds differ (a loaded machine, a slower GPU), the failure users of decentralized training complain of most.
 */
export const DEFAULT_MATCH_WINDOW: MatchWindowPolicy = { floorMs: 10_000, capMs: 120_000, fraction: 3 }

export interface AllReduceAveragerOptions {
  job: string
  host: AllReduceHost
  gossip: ReadyGossip
  peerId: string
  codec: VectorCodec
  logger: Logger
  window?: Partial<MatchWindowPolicy>
  /** Compensate quantisation error across rounds (recommended for lossy codecs). */
  errorFeedback?: boolean
  /**
   * The job's peers this node is connected to now (the subscribers of the job's ready topic). A round closes as
   * soon as all of them are ready; only a missing one (stalled, or just crashed) makes it wait the full window,
   * and a crashed peer stops being expected as soon as its connection closes.
   */
  livePeers?: () => string[]
  /** Fewer members than this and the round fails for this peer (a lone peer must not train a fork of its own). */
  minGroupSize?: number
  now?: () => number
}

export class AllReduceAverager implements RoundAverager {
  private readonly matchmaking: Matchmaking
  private readonly butterfly: ButterflyAllReduce
  private readonly window: MatchWindowPolicy
  private readonly now: () => number
  private trainEwmaMs?: number
  private observations = 0
  private lastAverageAt?: number
  private residual?: Float32Array
  private speedBps = 50e6
  private lastTry?: { round: number, attempt: number }

  constructor (private readonly opts: AllReduceAveragerOptions) {
    this.matchmaking = new Matchmaking({ gossip: opts.gossip, peerId: opts.peerId })
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
    this.observations++
    this.trainEwmaMs = this.trainEwmaMs == null ? ms : 0.7 * this.trainEwmaMs + 0.3 * ms
  }

  matchWindowMs (): number {
    // A job's first round: peers differ in start-up time (installing, fetching data) far more than in
    // training speed, and one measurement says little: wait up to the cap for the connected peers.
    if (this.trainEwmaMs == null || this.observations < 2) return this.window.capMs
    const adaptive = this.trainEwmaMs * this.window.fraction
    return Math.min(this.window.capMs, Math.max(this.window.floorMs, adaptive))
  }

  async average (round: number, update: LocalUpdate, signal: AbortSignal): Promise<AveragedUpdate> {
    const n = update.pseudoGradient.length
    const deadline = this.now() + this.matchWindowMs()
    const expected = this.opts.livePeers?.()
    // The same round again (its group failed to form, nobody announced a newer state): the next try, or the
    // highest try another peer of the job already announced, so that peers retrying at different paces meet.
    const own = this.lastTry?.round === round ? this.lastTry.attempt + 1 : 0
    const attempt = Math.max(own, this.matchmaking.highestAttempt(this.opts.job, round))
    this.lastTry = { round, attempt }
    const { group, view, excluded } = await this.matchmaking.formGroup({
      job: this.opts.job, round, vectorLength: n, codec: this.opts.codec.id, speedBps: this.speedBps, deadline, signal, expected, minWaitMs: 300, attempt
    })
    if (group == null) throw new RoundFailedError(`round ${round}: not in the group (saw ${view.length}, excluded ${excluded.length})`)
    const min = this.opts.minGroupSize ?? 1
    if (group.members.length < min) throw new RoundFailedError(`round ${round}: the group has ${group.members.length} member(s), the job needs ${min}`)
    this.opts.logger.info({ event: 'group', round, attempt, members: group.members, excluded }, 'all-reduce group formed')
    const vector = this.opts.errorFeedback === true ? this.compensate(update.pseudoGradient, partitionGroup(group)) : update.pseudoGradient
    const result = await this.butterfly.run({
      group, vector, weight: update.samples, aggregator: plaintextAggregator(this.opts.codec, weightedMean), signal
    })
    const contributed = result.contributors.filter(c => c.fraction > 0).length
    if (contributed < min) {
      // Members dropped out during the exchange: a result from fewer peers than the job allows is a fork.
      throw new RoundFailedError(`round ${round}: only ${contributed} of the group's ${group.members.length} members contributed, the job needs ${min}`)
    }
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
