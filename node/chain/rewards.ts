/**
 * Contribution rewards from a peer's side. Each final round of a job mints its reward (the DAO's reward_per_round
 * when the round became final) to its contributors pro rata: floor(reward × weight / contributions_total). A peer
 * proves its weight with a Merkle proof against the final anchor's `contributions_root`, built here from the
 * checkpoint's own contributions (its checkpoint.json, fetched by the anchored CID) and checked against the anchor
 * (root and total) before anything is sent.
 *
 * @example
 * ```ts
 * const rounds = await rewardsOf({ ledger, job: 'mnist', peerId, contributionsOf })
 * const { claimed } = await claimRewards({ ledger, job: 'mnist', peerId, contributionsOf })
 * ```
 */
import {
  contributionProof, contributionsRoot, contributionsTotal, verifyContributionProof, type Contribution
} from '../../protocol/contributions.ts'
import type { CheckpointAnchor, Ledger, LedgerCallOptions, RewardClaim } from './ledger.ts'

/** The contributions a checkpoint lists (its checkpoint.json), by the checkpoint's CID. */
export type ContributionsOf = (checkpointCid: string, round: number, options: { signal?: AbortSignal }) => Promise<readonly Contribution[]>

/** The ledger methods rewards use. */
export type RewardsLedger = Pick<Ledger, 'accountId' | 'getJob' | 'getAnchor' | 'getReward' | 'claimReward' | 'getTrainerByPeer'>

/**
 * claimed: paid; pending: earned and not claimed yet; not-contributed: the peer has no leaf in the round;
 * no-reward: the round pays nothing (reward 0 when it became final) or this share rounds down to 0.
 */
export type RoundRewardStatus = 'claimed' | 'pending' | 'not-contributed' | 'no-reward'

export interface RoundReward {
  round: number
  checkpointCid: string
  /** The round's whole reward, in token units. */
  roundReward: bigint
  contributionsTotal: number
  /** This peer's accepted samples in the round; null when it has none, or when the round pays nothing (not fetched). */
  weight: number | null
  /** floor(roundReward × weight / contributionsTotal). */
  earned: bigint
  /** What the claim paid, once claimed. */
  claimed: bigint | null
  status: RoundRewardStatus
  /** The leaf's proof (pending rounds only). */
  proof?: string[]
}

/** A checkpoint's contributions do not hash to its final anchor's root and total: they cannot prove anything. */
export class ContributionsMismatchError extends Error {
  override name = 'ContributionsMismatchError'
}

/** The signing account cannot claim for this peer on the job (not bound to it). */
export class RewardClaimantError extends Error {
  override name = 'RewardClaimantError'
}

export interface RewardsInput {
  ledger: RewardsLedger
  job: string
  peerId: string
  contributionsOf: ContributionsOf
  /** Only these rounds (default: every final round up to the job's latest). */
  rounds?: number[]
  signal?: AbortSignal
}

/** The job's final anchors, in round order (each round up to `latest_final_round` is read once). */
export async function finalAnchors (ledger: RewardsLedger, job: string, rounds?: number[], o: LedgerCallOptions = {}): Promise<CheckpointAnchor[]> {
  const onChain = await ledger.getJob(job, o)
  if (onChain == null) throw new Error(`job ${job} is not on chain`)
  const latest = onChain.latest_final_round
  if (latest == null) return []
  const wanted = rounds ?? Array.from({ length: latest + 1 }, (_, r) => r)
  const out: CheckpointAnchor[] = []
  for (const r of wanted) {
    const a = await ledger.getAnchor(job, r, o)
    if (a?.final != null) out.push(a.final)
  }
  return out
}

/** `anchor`'s reward for `peerId`, with the proof when there is something to claim. */
export async function roundRewardOf (input: Omit<RewardsInput, 'rounds'>, anchor: CheckpointAnchor): Promise<RoundReward> {
  const { ledger, job, peerId } = input
  const o = { signal: input.signal }
  const roundReward = BigInt(anchor.reward)
  const total = anchor.contributions_total
  if (total == null) throw new ContributionsMismatchError(`round ${anchor.round} of job ${job} was anchored without a contributions total: it has no reward`)
  const base = { round: anchor.round, checkpointCid: anchor.checkpoint_cid, roundReward, contributionsTotal: total }
  const onChain = await ledger.getReward(job, anchor.round, peerId, o)
  if (onChain?.claimed === true) {
    const paid = BigInt(onChain.amount ?? '0')
    return { ...base, weight: onChain.weight, earned: paid, claimed: paid, status: 'claimed' }
  }
  if (roundReward === 0n || total === 0) return { ...base, weight: null, earned: 0n, claimed: null, status: 'no-reward' }
  const contributions = await input.contributionsOf(anchor.checkpoint_cid, anchor.round, o)
  const root = contributionsRoot(job, anchor.round, contributions)
  const sum = contributionsTotal(contributions)
  if (root !== anchor.contributions_root || sum !== total) {
    throw new ContributionsMismatchError(`the contributions of checkpoint ${anchor.checkpoint_cid} hash to root ${root} and total ${sum}, ` +
      `its final anchor (round ${anchor.round} of job ${job}) says ${anchor.contributions_root} and ${total}`)
  }
  const mine = contributions.find(c => c.peer === peerId)
  if (mine == null) return { ...base, weight: null, earned: 0n, claimed: null, status: 'not-contributed' }
  const earned = roundReward * BigInt(mine.samples) / BigInt(total)
  if (earned === 0n) return { ...base, weight: mine.samples, earned, claimed: null, status: 'no-reward' }
  const proof = contributionProof(job, anchor.round, contributions, peerId)
  if (!verifyContributionProof(anchor.contributions_root, { job, round: anchor.round, peer: peerId, samples: mine.samples }, proof)) {
    throw new ContributionsMismatchError(`the proof built for ${peerId} in round ${anchor.round} does not verify against the anchored root`)
  }
  return { ...base, weight: mine.samples, earned, claimed: null, status: 'pending', proof }
}

/** This peer's reward in every final round of the job (or the rounds asked for): earned, claimed, pending. */
export async function rewardsOf (input: RewardsInput): Promise<RoundReward[]> {
  const anchors = await finalAnchors(input.ledger, input.job, input.rounds, { signal: input.signal })
  const out: RoundReward[] = []
  for (const a of anchors) out.push(await roundRewardOf(input, a))
  return out
}

/**
 * Claims every pending round's reward for `peerId`, signed by the ledger's account, which must be the one the
 * peer is bound to on the job (`nearai job register-trainer`). Returns the claims paid and every round's state
 * before claiming.
 */
export async function claimRewards (input: RewardsInput): Promise<{ claims: RewardClaim[], rounds: RoundReward[] }> {
  const { ledger, job, peerId } = input
  const o = { signal: input.signal }
  const holder = await ledger.getTrainerByPeer(job, peerId, o)
  if (holder == null) throw new RewardClaimantError(`peer ${peerId} is not registered on job ${job}: rewards are paid to registered trainers (nearai job register-trainer --job ${job})`)
  if (holder.account_id !== ledger.accountId) throw new RewardClaimantError(`peer ${peerId} is bound to ${holder.account_id} on job ${job}, not to ${ledger.accountId}: claim as that account`)
  if (holder.status === 'slashed') throw new RewardClaimantError(`${holder.account_id} was slashed on job ${job}: it earns no rewards`)
  const rounds = await rewardsOf(input)
  const claims: RewardClaim[] = []
  for (const r of rounds) {
    if (r.status !== 'pending' || r.weight == null || r.proof == null) continue
    claims.push(await ledger.claimReward({ job, round: r.round, peerId, weight: r.weight, proof: r.proof }, o))
  }
  return { claims, rounds }
}
