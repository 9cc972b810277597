/**
 * What a job needs before it goes on chain: validators evaluate every checkpoint on the job's evaluation set
 * with the deterministic evaluation, so the spec must name an evaluation set (`evalDataset`, a CID) and a
 * model that evaluation covers. Checked when the job is created on chain, and again by every validator.
 */
import { CID } from 'multiformats/cid'
import type { CreateJobInput } from '../chain/ledger.ts'
import type { JobSpec } from '../training/job-spec.ts'
import { assertDeterministicallyEvaluable, UnsupportedEvaluationError } from '../training/deterministic-eval.ts'

export class JobNotValidatableError extends Error {
  override name = 'JobNotValidatableError'
}

/** The evaluation set's CID, or a JobNotValidatableError saying what to fix in the spec. */
export function requireValidatable (spec: JobSpec): string {
  if (spec.evalDataset == null) {
    throw new JobNotValidatableError(`job ${spec.id} names no evaluation set: a job on chain needs "evalDataset" (a held-out dataset CID) in its spec, because validators attest each checkpoint's loss on it`)
  }
  try {
    CID.parse(spec.evalDataset)
  } catch {
    throw new JobNotValidatableError(`job ${spec.id}: evalDataset "${spec.evalDataset}" is not a CID`)
  }
  try {
    assertDeterministicallyEvaluable(spec.model)
  } catch (err) {
    if (err instanceof UnsupportedEvaluationError) throw new JobNotValidatableError(`job ${spec.id}: ${err.message}`)
    throw err
  }
  return spec.evalDataset
}

/** The `create_job` input for a validated spec stored under `specCid`. */
export function onChainJob (spec: JobSpec, specCid: string, validators: string[], threshold: number): CreateJobInput {
  return { job: spec.id, specCid, evalCid: requireValidatable(spec), validators, threshold }
}
