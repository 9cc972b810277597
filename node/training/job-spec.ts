/** The job spec schema: what a training job trains, on what, and how. Pure (no I/O). */
import { z } from 'zod'
import { JOB_ID_PATTERN } from '../../protocol/topics.ts'
import { MAX_ROUND_SAMPLES } from '../../protocol/allreduce.ts'
import { UpdateCodecId } from '../../protocol/update-parts.ts'
import { InvalidSpecError, ModelSpec, formatIssues } from './model-spec.ts'

/**
 * Bounds on a job spec's sizes: a spec comes from a file or from IPFS (anyone's), and each of these sizes
 * turns into work or memory on every peer. A spec past one is refused when parsed, naming the field and
 * the bound. Inner steps × batch size is also bounded, by the protocol's MAX_ROUND_SAMPLES: it is the sample
 * count (the weight) a peer's update stands for in a round.
 */
export const JOB_SPEC_LIMITS = {
  rounds: 1_000_000,
  innerSteps: 100_000,
  batchSize: 65_536,
  checkpointEvery: 1_000_000,
  evalEvery: 1_000_000,
  /** The evaluation set is held in memory by every trainer and validator (and evaluated in float64 by validators). */
  evalMaxSamples: 100_000,
  /** Learning rates and weight decay: a finite number this large is already a typo. */
  rate: 1_000
} as const

const limit = (name: keyof typeof JOB_SPEC_LIMITS): [number, string] => [JOB_SPEC_LIMITS[name], `at most ${JOB_SPEC_LIMITS[name].toLocaleString('en-US')} (JOB_SPEC_LIMITS.${name})`]

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
  dataset: z.string().min(1).max(256),
  /** CID of a held-out dataset manifest the peers evaluate on (never trained on). */
  evalDataset: z.string().min(1).max(256).optional(),
  /** A round's group needs at least this many peers; a lone peer waits instead of training on a fork of its own. */
  minPeers: z.number().int().min(1).max(256).default(2),
  rounds: z.number().int().positive().max(...limit('rounds')).default(20),
  inner: z.object({
    steps: z.number().int().positive().max(...limit('innerSteps')).default(50),
    lr: z.number().positive().max(...limit('rate')).default(1e-3),
    weightDecay: z.number().min(0).max(...limit('rate')).default(0.01),
    batchSize: z.number().int().positive().max(...limit('batchSize')).default(64)
  }).strict().refine(i => i.steps * i.batchSize <= MAX_ROUND_SAMPLES, {
    message: `steps × batchSize is at most ${MAX_ROUND_SAMPLES.toLocaleString('en-US')} samples a round (MAX_ROUND_SAMPLES)`, path: ['batchSize']
  }).default({ steps: 50, lr: 1e-3, weightDecay: 0.01, batchSize: 64 }),
  outer: z.object({
    lr: z.number().positive().max(...limit('rate')).default(0.7),
    momentum: z.number().min(0).lt(1).default(0.9),
    nesterov: z.boolean().default(true)
  }).strict().default({ lr: 0.7, momentum: 0.9, nesterov: true }),
  codec: UpdateCodecId.default('fp16'),
  aggregation: Aggregation.default({ rule: 'mean', trim: 1, maxNormRatio: 5 }),
  /**
   * Whether a round's all-reduce overlaps the next round's training. `none`: train, then reduce and apply, in
   * turn. `delayed-outer`: round t is reduced and applied while round t+1 trains (in a worker thread) from the
   * outer step of the last applied global state with this peer's own round-t update; the group's outer update
   * lands one round late (node/round/overlapped-loop.ts).
   */
  overlap: z.enum(['none', 'delayed-outer']).default('none'),
  checkpointEvery: z.number().int().positive().max(...limit('checkpointEvery')).default(5),
  seed: z.number().int().min(0).max(2 ** 31 - 1).default(0),
  eval: z.object({
    every: z.number().int().positive().max(...limit('evalEvery')).default(1),
    maxSamples: z.number().int().positive().max(...limit('evalMaxSamples')).default(2000)
  }).strict().default({ every: 1, maxSamples: 2000 })
}).strict()
export type JobSpec = z.infer<typeof JobSpec>

export function parseJobSpec (input: unknown): JobSpec {
  const r = JobSpec.safeParse(input)
  if (!r.success) throw new InvalidSpecError(`invalid job spec: ${formatIssues(r.error.issues)}`)
  return r.data
}
