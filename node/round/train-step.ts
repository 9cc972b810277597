/**
 * The train step: the shards rendezvous hashing assigns this peer for the round (among the job's live
 * peers), fetched from IPFS, then H inner AdamW steps from the global weights → the pseudo-gradient and the
 * samples it was computed from. A retry of the same round from the same state (its group failed to form)
 * reuses the update already trained.
 */
import type * as tf from '@tensorflow/tfjs'
import type { Logger } from 'pino'
import { assignShards } from '../training/assignment.ts'
import { trainLocal, type InnerParams, type LocalResult, type Samples } from '../training/local-trainer.ts'
import { weightsHash } from '../training/outer-optimizer.ts'
import type { GlobalState, LocalUpdate, RoundTrainer } from './steps.ts'

/** Where the train step reads the job's shards (node/job/shard-data.ts's ShardData fits). */
export interface ShardSource {
  readonly shardCount: number
  /** The samples of the given shards together; undefined for none. */
  shards: (indexes: number[], signal?: AbortSignal) => Promise<Samples | undefined>
}

export interface ShardTrainerOptions {
  job: string
  /** This peer's id. */
  self: string
  data: ShardSource
  /** The model the inner steps run on (its weights are overwritten each round). */
  model: tf.LayersModel
  /**
   * Runs the inner steps elsewhere instead of on `model` (the trainer worker: training/worker/trainer-worker.ts,
   * for an overlapped loop whose all-reduce must progress while it trains). Same computation as trainLocal.
   */
  local?: (global: Float32Array, samples: Samples, params: InnerParams, opts: { signal: AbortSignal }) => Promise<LocalResult>
  /** The job's inner optimizer: steps, learning rate, weight decay, batch size. */
  inner: Omit<InnerParams, 'seed'>
  /** The job's seed: each round's batch order derives from it, the round and this peer's place. */
  seed: number
  /** The job's peers this node is connected to, itself included, in canonical order. */
  livePeers: () => string[]
  /** Told how long the inner steps took (the match window is sized from it). */
  pace?: { observeTrainingTime: (ms: number) => void }
  logger: Logger
}

export class ShardTrainer implements RoundTrainer {
  private last?: { round: number, from: string, update: LocalUpdate }

  constructor (private readonly opts: ShardTrainerOptions) {}

  /**
   * Fetches the shards this peer would be assigned for `round` among the live peers now, in the background,
   * so that they are in the data's cache when the round starts (a failure is left for `train` to meet).
   */
  prefetch (round: number, signal: AbortSignal): void {
    this.opts.data.shards(this.assigned(round, this.opts.livePeers()), signal).catch(() => {})
  }

  async train (state: GlobalState, round: number, signal: AbortSignal): Promise<LocalUpdate> {
    const { opts } = this
    const from = weightsHash(state.weights)
    if (this.last?.round === round && this.last.from === from) return this.last.update
    const peers = opts.livePeers()
    const mine = this.assigned(round, peers)
    const samples = await opts.data.shards(mine, signal)
    const started = Date.now()
    opts.logger.info({ event: 'training', round, from: from.slice(0, 12) }, 'inner steps start')
    const params = { ...opts.inner, seed: (opts.seed * 1_000_003 + round * 7919 + peers.indexOf(opts.self)) >>> 0 }
    const update = samples == null
      ? { pseudoGradient: new Float32Array(state.weights.length), samples: 0, loss: 0 }
      : opts.local != null
        ? await opts.local(state.weights, samples, params, { signal })
        : await trainLocal(opts.model, state.weights, samples, params, { signal })
    opts.pace?.observeTrainingTime(Date.now() - started)
    opts.logger.info({ event: 'trained', round, shards: mine, peers: peers.length, samples: update.samples, loss: update.loss, ms: Date.now() - started }, 'inner steps done')
    this.last = { round, from, update }
    return update
  }

  /** The shards this peer trains on in `round` when `peers` are the job's live peers. */
  private assigned (round: number, peers: string[]): number[] {
    const { opts } = this
    return assignShards({ jobId: opts.job, round, peerIds: peers, shardCount: opts.data.shardCount }).get(opts.self) ?? []
  }
}
