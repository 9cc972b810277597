/**
 * @packageDocumentation
 *
 * Averaging for DiLoCo rounds without a central server: matchmaking forms each round's group over the
 * typed gossip layer, and a butterfly all-reduce combines the members' encoded parts over direct streams
 * with a pluggable combine rule. The round's reduce step (node/round/allreduce-averager.ts) puts them
 * together with the encode step; used alone:
 *
 * @example
 * ```ts
 * const mm = new Matchmaking({ gossip: peerNode.gossip, peerId: peerNode.peerId })
 * const allReduce = new ButterflyAllReduce({ host: peerNode.libp2p })
 * await allReduce.start()
 * const { group } = await mm.formGroup({ job, round, vectorLength: delta.length, codec: codec.id, speedBps, deadline })
 * if (group != null) {
 *   const result = await allReduce.run({ group, vector: delta, weight: samples, aggregator: plaintextAggregator(codec, weightedMean) })
 *   apply(result.vector); record(result.contributors)
 * }
 * ```
 */
export { ButterflyAllReduce, RoundStage, AllReduceRoundError } from './butterfly.ts'
export type { AllReduceHost, AllReduceComponents, AllReduceInit, AllReduceLogger, RunOptions, AllReduceResult, PartReport, ContributorRecord, GroupAllReduce, AuditOptions, AuditReport, ReducerFault } from './all-reduce.ts'
export { DEFAULT_AUDIT_RATE } from './all-reduce.ts'
export { auditorOf, auditShift } from './audit.ts'
export { Matchmaking, type ReadyGossip, type MatchmakingComponents, type MatchmakingInit, type FormGroupOptions, type FormGroupResult } from './matchmaking.ts'
export { makeGroup, partitionGroup, type RoundGroup, type MakeGroupOptions } from './group.ts'
export { partitionVector, speedShares, type Partition } from './partition.ts'
export { weightedMean, plaintextAggregator, inCanonicalOrder, COMBINE_BLOCK, type ReducedPayload, type CombineRule, type PartAggregator, type PartContribution, type CombinedPart, type WireContribution, type PartMeta, type ReduceContext } from './combine.ts'
export { trimmedMean, coordinateMedian, MAX_TRIM } from './robust-rules.ts'
export { checkedAggregator, checkContributions, type UpdateCheckOptions, type SampleBound, type RejectReason } from './update-checks.ts'
export { jobAggregator, combineRuleFor, type AggregationSettings, type AggregationRule } from './aggregation.ts'
export { PeerSpeedTracker, DEFAULT_TIMEOUT_POLICY, type TimeoutPolicy, type PeerSpeedSnapshot } from './timeouts.ts'
export { systemClock, type Clock } from '../time/clock.ts'
export { ALLREDUCE_PROTOCOL, ALLREDUCE_AUDIT_PROTOCOL, jobReadyTopic } from '../../protocol/allreduce.ts'
