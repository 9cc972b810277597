/**
 * What a validator checks before it attests a round: the checkpoint fetched by CID (every file verified
 * against its checkpoint.json, the weights re-hashed), that it is this job's checkpoint of this round, that
 * its weights fit the job's model, and its deterministic evaluation loss on the job's evaluation set. The
 * claim it returns is computed from the checkpoint's bytes alone, so honest validators return the same one.
 */
import type { Helia } from '@helia/interface'
import type { CID } from 'multiformats/cid'
import { getCheckpoint, type FetchedCheckpoint } from '../storage/checkpoints.ts'
import { ContentNotFoundError, FetchTimeoutError } from '../storage/errors.ts'
import { deterministicWeightLayout, evaluateDeterministic, type DeterministicEvaluation } from '../training/deterministic-eval.ts'
import type { JobSpec } from '../training/job-spec.ts'
import type { Samples } from '../training/local-trainer.ts'
import type { Contribution } from '../../protocol/contributions.ts'
import type { UpdateLayout } from './contribution-scores.ts'

/** The checkpoint is not one this validator will attest; `retry` says whether fetching again could help. */
export class CheckpointRejectedError extends Error {
  override name = 'CheckpointRejectedError'
  constructor (message: string, readonly retry: boolean, options?: { cause?: unknown }) { super(message, options) }
}

export interface CheckpointClaim {
  round: number
  checkpointCid: string
  weightsSha256: string
  /** From the checkpoint's checkpoint.json: the CID commits to them (with each contributor's update commitment). */
  contributions: Contribution[]
  /** How the round's updates were cut into parts, when the checkpoint commits to them. */
  updates?: UpdateLayout
  /** CID of the state the round started from (checkpoint.json `parent`); null for the first round. */
  parent: string | null
  /** The checkpoint's flat weights (what was evaluated). */
  weights: Float32Array
  evaluation: DeterministicEvaluation
}

export interface CheckCheckpointOptions {
  spec: JobSpec
  evalSet: Samples
  round: number
  /** A weights hash the checkpoint must have (the round's announced majority), when known. */
  expectedWeightsSha256?: string
  timeoutMs?: number
  signal?: AbortSignal
}

/** The flat float32 weights of a fetched checkpoint, after checking model.json describes the job's model. */
export function checkpointWeights (spec: JobSpec, checkpoint: Pick<FetchedCheckpoint, 'artifacts' | 'weightData' | 'cid'>): Float32Array {
  const layout = deterministicWeightLayout(spec.model)
  const specs = checkpoint.artifacts.weightSpecs ?? []
  const shapes = (s: Array<{ shape: number[] }>): string => s.map(w => `[${w.shape.join(',')}]`).join(' ')
  if (specs.length !== layout.length || specs.some((w, i) => w.dtype !== 'float32' || shapes([w]) !== shapes([layout[i]]))) {
    throw new CheckpointRejectedError(`checkpoint ${checkpoint.cid.toString()}: model.json describes weights ${shapes(specs)}, the job's ${spec.model.kind} has ${shapes(layout)}`, false)
  }
  const bytes = checkpoint.weightData
  if (bytes.byteLength % 4 !== 0) throw new CheckpointRejectedError(`checkpoint ${checkpoint.cid.toString()}: ${bytes.byteLength} weight bytes is not a whole number of float32 values`, false)
  const out = new Float32Array(bytes.byteLength / 4)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true)
  return out
}

/** The most bytes a checkpoint of the job's model can hold: float32 weights and an outer momentum of the same size, plus model.json. */
export function maxCheckpointBytes (spec: JobSpec): number {
  const size = deterministicWeightLayout(spec.model).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0)
  return size * 8 + 16 * 1024 * 1024
}

/** Fetches, verifies and evaluates checkpoint `cid` as round `round` of the job; throws CheckpointRejectedError. */
export async function checkCheckpoint (helia: Helia, cid: CID, opts: CheckCheckpointOptions): Promise<CheckpointClaim> {
  const { spec } = opts
  let checkpoint: FetchedCheckpoint
  try {
    checkpoint = await getCheckpoint(helia, cid, {
      expectedWeightsSha256: opts.expectedWeightsSha256,
      maxBytes: maxCheckpointBytes(spec),
      timeoutMs: opts.timeoutMs,
      signal: opts.signal
    })
  } catch (err) {
    const unreachable = err instanceof ContentNotFoundError || err instanceof FetchTimeoutError || opts.signal?.aborted === true
    throw new CheckpointRejectedError(`checkpoint ${cid.toString()}: ${(err as Error).message}`, unreachable, { cause: err })
  }
  const { manifest } = checkpoint
  if (manifest.job !== spec.id || manifest.round !== opts.round) {
    throw new CheckpointRejectedError(`checkpoint ${cid.toString()} is job ${manifest.job} round ${manifest.round}, not job ${spec.id} round ${opts.round}`, false)
  }
  if (manifest.contributions == null) {
    throw new CheckpointRejectedError(`checkpoint ${cid.toString()} lists no contributions in its checkpoint.json (published by an older node): its contributions root cannot be derived`, false)
  }
  const weights = checkpointWeights(spec, checkpoint)
  let evaluation: DeterministicEvaluation
  try {
    evaluation = evaluateDeterministic(spec.model, weights, opts.evalSet)
  } catch (err) {
    throw new CheckpointRejectedError(`checkpoint ${cid.toString()} cannot be evaluated: ${(err as Error).message}`, false, { cause: err })
  }
  if (!Number.isFinite(evaluation.loss)) throw new CheckpointRejectedError(`checkpoint ${cid.toString()} evaluates to a loss of ${evaluation.loss}`, false)
  return { round: manifest.round, checkpointCid: cid.toString(), weightsSha256: manifest.weights.sha256, contributions: manifest.contributions, updates: manifest.updates, parent: manifest.parent, weights, evaluation }
}
