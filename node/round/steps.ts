/**
 * The steps of a DiLoCo round, each behind a narrow interface, so the data of a round flows one way and
 * each step can be replaced on its own:
 *
 *   train     GlobalState, round           → LocalUpdate       inner steps on this peer's shards
 *   reduce    LocalUpdate                  → AveragedUpdate    group, encode (codec + error feedback), all-reduce
 *   apply     GlobalState, average         → GlobalState       the outer optimizer, bit-identical everywhere
 *   publish   GlobalState, RoundResult     → state CID         IPFS, state pointer, pins, round announcement
 *   evaluate  GlobalState, RoundResult     → Evaluation?       held-out accuracy and loss, when due
 *   attest    RoundResult, Evaluation?     → (background)      the checkpoint on chain, when it is one
 *
 * Update checks (shape, finite values, a norm bound) plug in between train and reduce without touching the
 * others. The overlapped outer update (round t reduced while round t+1 trains, overlapped-loop.ts) composes
 * `train` and round-loop.ts's `completeRound` differently; the steps share no state but what they are passed.
 */
import type { Contribution } from '../../protocol/contributions.ts'
import type { CheckpointUpdates } from '../../protocol/checkpoint-manifest.ts'
import type { Evaluation } from '../training/local-trainer.ts'

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
  /** Fetches the data a later round will train on, in the background (the overlapped loop: while this round trains). */
  prefetch?: (round: number, signal: AbortSignal) => void
}

/** One peer's accepted samples in a round: what rewards are computed from (protocol/contributions.ts). */
export type { Contribution }

/**
 * How a round's update commitments (each contribution's `update` digests) are laid out: the codec that encoded
 * the payloads and each part's element count, in part order. Written into checkpoint.json as `updates`.
 */
export type UpdateLayout = CheckpointUpdates

/** A part of the all-reduce whose reducer failed, reduced by another member instead. */
export interface StandIn { part: number, failed: string, standIn: string }

export interface AveragedUpdate {
  /**
   * The group's combined pseudo-gradients (the weighted mean by samples), bit-identical at every member. Valid
   * through the next round: the averager assembles the round after next in the same memory.
   */
  average: Float32Array
  /** With `update` (this peer's payload digests per part) where every part's reducer listed one. */
  contributions: Contribution[]
  /** Present when any contribution has `update`. */
  updates?: UpdateLayout
  dropped: string[]
  /** Parts whose reducer failed and another member reduced (from the survivors' contributions). */
  standIns: StandIn[]
  bytesSent: number
  bytesReceived: number
}

/** The reduce step: encodes this peer's update and combines it with its group's (see allreduce-averager.ts). */
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
  /** The layout of the contributions' update digests, when any has them (see AveragedUpdate). */
  updates?: UpdateLayout
  dropped: string[]
  standIns: StandIn[]
  bytesSent: number
  bytesReceived: number
  /** CID of the state snapshot (every round) and whether it is a published checkpoint (every K rounds). */
  stateCid?: string
  checkpoint: boolean
  millis: number
  /** Held-out evaluation of the new state, in the rounds the evaluate step runs. */
  evaluation?: Evaluation
}

export interface RoundPublisher {
  /** Stores the state (IPFS, local pointer), announces the round on gossip; returns the state's CID. */
  publish: (state: GlobalState, result: Omit<RoundResult, 'stateCid' | 'evaluation'>) => Promise<string | undefined>
}

export interface RoundEvaluator {
  /** Evaluates the new state when this round is due for it (checkpoints, every N rounds); undefined otherwise. */
  evaluate: (state: GlobalState, result: RoundResult) => Evaluation | undefined
}

export interface RoundAttester {
  /** Hands a published checkpoint (its state and round result) over for attestation; never blocks or fails the round. */
  attest: (state: GlobalState, result: RoundResult & { stateCid: string }) => void
  /** Resolves when every handed-over checkpoint is attested (or given up on). */
  drain: () => Promise<void>
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

/** The round's steps, in the order the data flows through them. */
export interface RoundSteps {
  train: RoundTrainer
  reduce: RoundAverager
  apply: OuterStep
  publish: RoundPublisher
  evaluate?: RoundEvaluator
  attest?: RoundAttester
}
