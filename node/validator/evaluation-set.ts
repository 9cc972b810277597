/**
 * A job's evaluation set as every validator (and a training peer that attests) reads it: the spec's
 * `evalDataset` decoded for the job's model, its first `eval.maxSamples` samples in the dataset's order.
 * One definition, so that the deterministic evaluation runs on the same samples everywhere.
 */
import type { Helia } from '@helia/interface'
import { ShardData } from '../job/shard-data.ts'
import { sliceSamples } from '../training/data/mnist.ts'
import type { Samples } from '../training/local-trainer.ts'
import type { JobSpec } from '../training/job-spec.ts'
import { requireValidatable } from './job-requirements.ts'

export async function loadEvaluationSet (helia: Helia, spec: JobSpec, opts: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<Samples> {
  const cid = requireValidatable(spec)
  const decode = spec.model.kind === 'char-transformer' ? { context: spec.model.context } : {}
  const inputShape = spec.model.kind === 'mlp' ? [spec.model.inputs] : spec.model.kind === 'cnn' ? [...spec.model.inputShape] : undefined
  const all = await (await ShardData.open(helia, cid, { timeoutMs: opts.timeoutMs, signal: opts.signal, decode, inputShape })).all(opts.signal)
  return sliceSamples(all, 0, Math.min(all.count, spec.eval.maxSamples))
}
