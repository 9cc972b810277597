/**
 * A round's global state on IPFS: the weights as a TensorFlow.js checkpoint folder (see storage/checkpoints.ts)
 * with DiLoCo's outer momentum as an extra file, so a peer that joins late or restarts resumes exactly where
 * the others are. The checkpoint's weights hash is the round's weights hash (the same little-endian float32
 * bytes in the same order), so a round announcement, a chain anchor and `checkpoint verify` all name one value.
 * checkpoint.json also carries the round's contributions; with canonical layer names in model.json (see
 * modelArtifacts) every peer of a round's group publishes the same bytes, hence the same CID.
 */
import type { Helia } from '@helia/interface'
import type { CID } from 'multiformats/cid'
import type * as tf from '@tensorflow/tfjs'
import { getCheckpoint, publishCheckpoint } from '../storage/checkpoints.ts'
import { HashMismatchError, InvalidContentError } from '../storage/errors.ts'
import { modelArtifacts } from '../storage/checkpoint-model.ts'
import { setFlatWeights } from '../training/weights.ts'
import { weightsHash } from '../training/outer-optimizer.ts'
import type { GlobalState } from '../round/steps.ts'
import type { Contribution } from '../../protocol/contributions.ts'
import type { CheckpointUpdates } from '../../protocol/checkpoint-manifest.ts'

export const MOMENTUM_FILE = 'outer-momentum.bin'
export const MOMENTUM_ROLE = 'diloco-outer-momentum'

export interface PublishStateOptions {
  job: string
  parent?: string | null
  /** Announce the folder on the DHT (checkpoint rounds); snapshots between checkpoints are served by bitswap only. */
  provide: boolean
  metrics?: Record<string, number>
  /** The round's accepted samples per peer: written into checkpoint.json, so validators read them from the checkpoint. */
  contributions?: readonly Contribution[]
  /** The layout of the contributions' `update` digests (codec, part sizes): written as checkpoint.json's `updates`. */
  updates?: CheckpointUpdates
  signal?: AbortSignal
}

/** Stores `state` as a checkpoint folder (pinned); returns its CID and weights hash. */
export async function publishState (helia: Helia, model: tf.LayersModel, state: GlobalState, opts: PublishStateOptions): Promise<{ cid: CID, weightsSha256: string }> {
  setFlatWeights(model, state.weights)
  const extraFiles = state.momentum.length > 0
    ? [{ path: MOMENTUM_FILE, role: MOMENTUM_ROLE, dtype: 'float32' as const, shape: [state.momentum.length], bytes: littleEndianBytes(state.momentum) }]
    : []
  const published = await publishCheckpoint(helia, {
    artifacts: await modelArtifacts(model),
    job: opts.job,
    round: Math.max(0, state.round),
    parent: opts.parent ?? null,
    metrics: opts.metrics,
    extraFiles,
    contributions: opts.contributions,
    updates: opts.updates,
    provide: opts.provide,
    signal: opts.signal
  })
  const expected = weightsHash(state.weights)
  if (published.manifest.weights.sha256 !== expected) {
    // The checkpoint would commit to other bytes than the round's hash: a model whose weights are not all in
    // flattenWeights' order. Refuse rather than announce two hashes for one state.
    throw new HashMismatchError(published.cid, `checkpoint weights hash ${published.manifest.weights.sha256} differs from the state's ${expected}`, expected, published.manifest.weights.sha256)
  }
  return { cid: published.cid, weightsSha256: expected }
}

export interface LoadStateOptions {
  /** The weights hash the state must have (from round announcements or a chain anchor). */
  expectedWeightsSha256?: string
  /** How many values the job's model has: a state of another shape is refused. */
  size: number
  timeoutMs?: number
  offline?: boolean
  signal?: AbortSignal
}

/** Fetches (bounded, every file verified) and decodes a state snapshot; the round comes from its manifest. */
export async function loadState (helia: Helia, cid: CID, opts: LoadStateOptions): Promise<GlobalState & { job: string, contributors: string[] }> {
  const fetched = await getCheckpoint(helia, cid, {
    expectedWeightsSha256: opts.expectedWeightsSha256,
    maxBytes: opts.size * 8 + 16 * 1024 * 1024,
    timeoutMs: opts.timeoutMs,
    offline: opts.offline,
    signal: opts.signal
  })
  const weights = float32FromLittleEndian(fetched.weightData)
  if (weights.length !== opts.size) throw new InvalidContentError(cid, `state ${cid.toString()} has ${weights.length} weights, the job's model ${opts.size}`)
  const momentumBytes = fetched.extraFiles.get(MOMENTUM_FILE)
  const momentum = momentumBytes != null ? float32FromLittleEndian(momentumBytes) : new Float32Array(0)
  if (momentum.length !== 0 && momentum.length !== opts.size) throw new InvalidContentError(cid, `state ${cid.toString()} has ${momentum.length} momentum values, the job's model ${opts.size}`)
  // The round's participants, as the CID commits to them (round trust: who vouches for the next round).
  const contributors = (fetched.manifest.contributions ?? []).map(c => c.peer)
  return { job: fetched.manifest.job, round: fetched.manifest.round, weights, momentum, contributors }
}

function littleEndianBytes (v: Float32Array): Uint8Array {
  const out = new Uint8Array(v.length * 4)
  const dv = new DataView(out.buffer)
  for (let i = 0; i < v.length; i++) dv.setFloat32(i * 4, v[i], true)
  return out
}

function float32FromLittleEndian (bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`${bytes.byteLength} bytes is not a whole number of float32 values`)
  const out = new Float32Array(bytes.byteLength / 4)
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true)
  return out
}
