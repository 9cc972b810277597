/** The job spec schema: what a training job trains, on what, and how. Pure (no I/O). */
import { z } from 'zod'
import { JOB_ID_PATTERN } from '../../protocol/topics.ts'
import { InvalidSpecError, ModelSpec, formatIssues } from './model-spec.ts'

/** The largest `aggregation.trim`: half the largest group (protocol/allreduce.ts's MAX_GROUP_SIZE) less one. */
export const MAX_AGGREGATION_TRIM = 127
export const MIN_NORM_RATIO = 1.5
export const MAX_NORM_RATIO = 1000

/**
 * How a round's parts are combined and which updates are let in (node/allreduce/aggregation.ts, ARCHITECTURE.md
 * "Aggregation and update checks"). `rule`: `mean` (the samples-weighted mean, what every job did before this
 * field), `trimmed-mean` (coordinate-wise, `trim` values dropped at each end: tolerates `trim` attackers per
 * coordinate) or `median` (coordinate-wise). `maxNormRatio`: an update whose norm on a part exceeds this multiple
 * of the part's median is rejected (null: no norm check). Non-finite updates and sample claims above what the
 * sender's shards hold are always rejected.
 */
export const Aggregation = z.object({
  rule: z.enum(['mean', 'trimmed-mean', 'median']).default('mean'),
  trim: z.number().int().min(1).max(MAX_AGGREGATION_TRIM).default(1),
  maxNormRatio: z.number().min(MIN_NORM_RATIO).max(MAX_NORM_RATIO).nullable().default(5)
}).strict().superRefine((a, ctx) => {
  if (a.rule !== 'trimmed-mean' && a.trim !== 1) ctx.addIssue({ code: 'custom', path: ['trim'], message: `trim applies to rule 'trimmed-mean' only, not '${a.rule}'` })
})
export type Aggregation = z.infer<typeof Aggregation>

export const JobSpec = z.object({
  /** Names the job in gossip topics, DHT keys and on chain. */
  id: z.string().regex(JOB_ID_PATTERN, "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"),
  model: ModelSpec,
  /** CID of the dataset manifest. */
  dataset: z.string().min(1),
  /** CID of a held-out dataset manifest the peers evaluate on (never trained on). */
  evalDataset: z.string().min(1).optional(),
  /** A round's group needs at least this many peers; a lone peer waits instead of training on a fork of its own. */
  minPeers: z.number().int().min(1).max(256).default(2),
  rounds: z.number().int().positive().default(20),
  inner: z.object({
    steps: z.number().int().positive().default(50),
    lr: z.number().positive().default(1e-3),
    weightDecay: z.number().min(0).default(0.01),
    batchSize: z.number().int().positive().default(64)
  }).strict().default({ steps: 50, lr: 1e-3, weightDecay: 0.01, batchSize: 64 }),
  outer: z.object({
    lr: z.number().positive().default(0.7),
    momentum: z.number().min(0).lt(1).default(0.9),
    nesterov: z.boolean().default(true)
  }).strict().default({ lr: 0.7, momentum: 0.9, nesterov: true }),
  codec: z.enum(['none', 'fp16', 'int8']).default('fp16'),
  aggregation: Aggregation.default({ rule: 'mean', trim: 1, maxNormRatio: 5 }),
  /**
   * Whether a round's all-reduce overlaps the next round's training. `none`: train, then reduce and apply, in
   * turn. `delayed-outer`: round t is reduced and applied while round t+1 trains (in a worker thread) from the
   * outer step of the last applied global state with this peer's own round-t update; the group's outer update
   * lands one round late (node/round/overlapped-loop.ts).
   */
  overlap: z.enum(['none', 'delayed-outer']).default('none'),
  checkpointEvery: z.number().int().positive().default(5),
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(0),
  eval: z.object({
    every: z.number().int().positive().default(1),
    maxSamples: z.number().int().positive().default(2000)
  }).strict().default({ every: 1, maxSamples: 2000 })
}).strict()
export type JobSpec = z.infer<typeof JobSpec>

export function parseJobSpec (input: unknown): JobSpec {
  const r = JobSpec.safeParse(input)
  if (!r.success) throw new InvalidSpecError(`invalid job spec: ${formatIssues(r.error.issues)}`)
  return r.data
}
