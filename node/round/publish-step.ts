/**
 * The publish step: the new state as a checkpoint folder on IPFS (a TensorFlow.js checkpoint + the outer
 * momentum; its weights hash is the round's hash), the local state pointer (`<home>/jobs/<job>/state.json`,
 * replaced atomically), the pins (the newest state and every checkpoint stay pinned, earlier in-between
 * snapshots are unpinned), then the round announcement on gossip. Checkpoint rounds are provided on the DHT.
 * Runs on its own model (for the checkpoint's topology), never the train step's.
 */
import type * as tf from '@tensorflow/tfjs'
import type { Helia } from '@helia/interface'
import { CID } from 'multiformats/cid'
import { pinRm } from '../storage/pins.ts'
import { saveStatePointer } from '../job/job-store.ts'
import { publishState } from '../job/state-snapshot.ts'
import type { Contribution, GlobalState, RoundPublisher, RoundResult } from './steps.ts'

/** Where a round is announced (node/job/network-state.ts's NetworkState fits). */
export interface RoundAnnouncer {
  announce: (round: number, weightsSha256: string, stateCid: string | undefined, contributions: Contribution[]) => Promise<unknown>
}

export interface StatePublisherOptions {
  helia: Helia
  /** The job's model: its topology goes into every checkpoint (its weights are overwritten). */
  model: tf.LayersModel
  home: string
  job: string
  announcer: RoundAnnouncer
  /** The state this peer resumed from, if any (kept pinned). */
  resumedCid?: string
  signal?: AbortSignal
}

export class StatePublisher implements RoundPublisher {
  /** The CID of the newest state this peer holds (published or adopted). */
  lastCid?: string
  private lastWasCheckpoint = true // the state resumed from is kept pinned

  constructor (private readonly opts: StatePublisherOptions) {
    this.lastCid = opts.resumedCid
  }

  async publish (next: GlobalState, result: Omit<RoundResult, 'stateCid' | 'evaluation'>): Promise<string> {
    const { helia, model, home, job, signal } = this.opts
    const totalSamples = result.contributions.reduce((s, c) => s + c.samples, 0)
    const published = await publishState(helia, model, next, { job, parent: this.lastCid, provide: result.checkpoint, metrics: { samples: totalSamples }, contributions: result.contributions, updates: result.updates, signal })
    const cid = published.cid.toString()
    await saveStatePointer(home, job, { round: next.round, cid, weightsSha256: published.weightsSha256 })
    // Keep the newest state and every checkpoint; earlier in-between snapshots are unpinned.
    if (this.lastCid != null && this.lastCid !== cid && !this.lastWasCheckpoint) await pinRm(helia, CID.parse(this.lastCid)).catch(() => {})
    this.lastCid = cid
    this.lastWasCheckpoint = result.checkpoint
    await this.opts.announcer.announce(next.round, published.weightsSha256, cid, result.contributions)
    return cid
  }

  /** Records a state adopted from the network as this peer's newest (a restart resumes from it). */
  async adopt (state: GlobalState, cid: string, weightsSha256: string): Promise<void> {
    this.lastCid = cid
    await saveStatePointer(this.opts.home, this.opts.job, { round: state.round, cid, weightsSha256 })
  }
}
