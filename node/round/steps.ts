/**
 * The steps of a DiLoCo round, each behind a narrow interface so the data of a round flows one way
 * (train → reduce → apply → publish) and each step can be replaced: the all-reduce by a robust or encrypted
 * one, the trainer by another backend, the publisher by one that also attests on chain.
 */
import type { Contribution } from '../../protocol/contributions.ts'

/** The global state every honest peer holds identically after a round. */
export interface GlobalState {
  /** The round this state is the result of (-1: the job's initial weights). */
  round: number
  weights: Float32Array
  /** Outer-optimizer state (Nesterov momentum), part of the state so that a joiner resumes exactly. */
  momentum: Float32Array
}

export interface LocalUpdate {
  /** Global minus local weights after the inner steps. */
  pseudoGradient: Float32Array
  /** Samples processed: the weight of this update in the average. */
  samples: number
  loss: number
}

export interface RoundTrainer {
  /** Runs the round's inner steps from `state.weights` on the shards assigned to this peer. */
  train: (state: GlobalState, round: number, signal: AbortSignal) => Promise<LocalUpdate>
}

/** One peer's accepted samples in a round: what rewards are computed from (protocol/contributions.ts). */
export type { Contribution }

export interface AveragedUpdate {
  /** Weighted mean of the group's pseudo-gradients, bit-identical at every member. */
  average: Float32Array
  contributions: Contribution[]
  dropped: string[]
  bytesSent: number
  bytesReceived: number
}

export interface RoundAverager {
  average: (round: number, update: LocalUpdate, signal: AbortSignal) => Promise<AveragedUpdate>
}

export interface OuterStep {
  /** Deterministic: the same inputs give bit-identical outputs on every machine. */
  apply: (state: GlobalState, average: Float32Array, round: number) => GlobalState
  /** Hex sha256 of the weights' little-endian float32 bytes. */
  hash: (weights: Float32Array) => string
}

export interface RoundResult {
  round: number
  weightsSha256: string
  loss: number
  samples: number
  contributions: Contribution[]
  dropped: string[]
  bytesSent: number
  bytesReceived: number
  /** CID of the state snapshot (every round) and whether it is a published checkpoint (every K rounds). */
  stateCid?: string
  checkpoint: boolean
  millis: number
}

export interface RoundPublisher {
  /** Stores the state (IPFS), announces the round on gossip; pins and attests when `checkpoint` is set. */
  publish: (state: GlobalState, result: Omit<RoundResult, 'stateCid'>) => Promise<string | undefined>
}

export interface StateSync {
  /**
   * The newest global state the job's peers announced (weights hash agreed by the announcements, fetched
   * by CID and verified), or `current` when nothing newer is known. Used when joining late, after a
   * restart, and after a round this peer failed while others completed it.
   */
  catchUp: (current: GlobalState, signal: AbortSignal) => Promise<GlobalState>
  /** Resolves true as soon as a state newer than `round` is announced, false after `ms`: how a failed round waits. */
  waitForNewer?: (round: number, ms: number, signal?: AbortSignal) => Promise<boolean>
}
