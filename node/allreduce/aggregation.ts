/**
 * A job's aggregation, from its spec's `aggregation` settings: the combine rule of every part, behind the
 * update checks (update-checks.ts), around the job's codec.
 */
import type { VectorCodec } from '../compression/codec.ts'
import { plaintextAggregator, weightedMean, type CombineRule, type PartAggregator } from './combine.ts'
import { coordinateMedian, trimmedMean } from './robust-rules.ts'
import { checkedAggregator, type SampleBound } from './update-checks.ts'

export type AggregationRule = 'mean' | 'trimmed-mean' | 'median'

/** The job spec's `aggregation` (node/training/job-spec.ts validates it). */
export interface AggregationSettings {
  rule: AggregationRule
  /** Values dropped at each end of every coordinate (trimmed-mean). */
  trim: number
  /** The norm check's bound, a multiple of the part's median norm; null: no norm check. */
  maxNormRatio: number | null
}

export function combineRuleFor (settings: Pick<AggregationSettings, 'rule' | 'trim'>): CombineRule {
  switch (settings.rule) {
    case 'mean': return weightedMean
    case 'trimmed-mean': return trimmedMean(settings.trim)
    case 'median': return coordinateMedian
  }
}

/** The job's part aggregator: `codec` both ways, the rule, and the update checks before it. */
export function jobAggregator (codec: VectorCodec, settings: AggregationSettings, sampleBound?: SampleBound): PartAggregator<Float32Array> {
  return checkedAggregator(plaintextAggregator(codec, combineRuleFor(settings)), { maxNormRatio: settings.maxNormRatio, sampleBound })
}
