/**
 * A job's evaluation set as every validator (and a training peer that attests) reads it: the spec's
 * `evalDataset` decoded for the job's model, its first `eval.maxSamples` samples in the dataset's order.
 * One definition, so that the deterministic evaluation runs on the same samples everywhere. Bounded: the spec
 * bounds `eval.maxSamples`, and the shards read to find them are at most `maxBytes` (DEFAULT_EVAL_SET_MAX_BYTES).
 */
import type { Helia } from '@helia/interface'
import { loadEvaluationSamples } from '../job/shard-data.ts'
import type { Samples } from '../training/local-trainer.ts'
import type { JobSpec } from '../training/job-spec.ts'
import { requireValidatable } from './job-requirements.ts'

export async function loadEvaluationSet (helia: Helia, spec: JobSpec, opts: { timeoutMs?: number, signal?: AbortSignal, maxBytes?: number } = {}): Promise<Samples> {
  return await loadEvaluationSamples(helia, spec, requireValidatable(spec), opts)
}
