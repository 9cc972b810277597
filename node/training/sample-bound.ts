/**
 * The most samples a peer can honestly claim for a round: the train step runs the job's inner steps on the
 * shards rendezvous hashing assigns it (assignment.ts), and a step takes min(batch size, the samples those
 * shards hold) of them (local-trainer.ts), so a claim is at most steps × min(batchSize, samples of its shards).
 * The reducer recomputes the assignment among the round's group: the one view of the live peers every member
 * shares. Pure.
 */
import type { DatasetManifest } from '../../protocol/dataset-manifest.ts'
import type { SampleBound } from '../allreduce/update-checks.ts'
import { assignShards } from './assignment.ts'

/**
 * What each shard can yield as samples: its manifest count, or for text (windows cut by the model's context,
 * not known to the manifest) its bytes, an upper bound of the windows it holds.
 */
export function shardSampleCapacities (manifest: Pick<DatasetManifest, 'format' | 'shards'>): number[] {
  return manifest.shards.map(s => manifest.format.kind === 'text' ? s.bytes : s.samples)
}

export interface SampleBoundInput {
  job: string
  inner: { steps: number, batchSize: number }
  /** Samples each shard can yield, by shard index (shardSampleCapacities). */
  capacities: readonly number[]
}

export function sampleClaimBound (input: SampleBoundInput): SampleBound {
  const { job, inner, capacities } = input
  // Each reducer asks for every member of its part: the assignment of one (round, group) is computed once.
  let cached: { key: string, assigned: Map<string, number[]> } | undefined
  return (peer, round, members) => {
    const key = `${round}\n${members.join('\n')}`
    if (cached?.key !== key) cached = { key, assigned: assignShards({ jobId: job, round, peerIds: [...members], shardCount: capacities.length }) }
    const held = (cached.assigned.get(peer) ?? []).reduce((sum, shard) => sum + capacities[shard], 0)
    return inner.steps * Math.min(inner.batchSize, held)
  }
}
