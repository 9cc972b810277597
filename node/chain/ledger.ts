/**
 * The one view of the NearAI contract the rest of the node uses, whatever chain is behind it: the
 * embedded dev chain (`DevChainLedger`) or a NEAR network through near-api-js (`NearLedger`).
 * Implementations supply two primitives (a signed call and a view); this class names the contract's
 * methods and validates every result.
 */
import { z } from 'zod'
import { abortable } from '../time/clock.ts'
import {
  anchorSchema, attestationSchema, bondWithdrawalSchema, daoParamsSchema, daoProposalSchema, daoProposalsPageSchema, jobSchema,
  parseChainResult, rewardClaimSchema, rewardSchema, roundAnchorsSchema, storageBalanceSchema, tokenAmountSchema, trainerSchema, trainersPageSchema,
  type Attestation, type BondWithdrawal, type CheckpointAnchor, type DaoParams, type DaoProposal, type Job, type Reward, type RewardClaim,
  type RoundAnchors, type StorageBalance, type Trainer
} from './schemas.ts'

export type { Attestation, BondWithdrawal, CheatReport, CheckpointAnchor, DaoParams, DaoProposal, Job, Reward, RewardClaim, RoundAnchors, StorageBalance, Trainer } from './schemas.ts'

export const DEFAULT_CALL_GAS = 100_000_000_000_000n // 100 Tgas
/** Deposit for storage_deposit when none is given: 0.1 NEAR covers a job or many attestations. */
export const DEFAULT_STORAGE_DEPOSIT = 10n ** 23n

/** get_trainers' largest page. */
const TRAINERS_PAGE = 100
/** dao_list_proposals' largest page. */
const PROPOSALS_PAGE = 50

/** A contract call that executed and failed (a panic, out of gas): `message` carries the chain's reason. */
export class LedgerCallError extends Error {
  override name = 'LedgerCallError'
  constructor (message: string, readonly details?: unknown) { super(message) }
}

export interface CreateJobInput {
  job: string
  specCid: string
  /** CID of the evaluation dataset the validators evaluate every checkpoint on (the spec's `evalDataset`). */
  evalCid: string
  validators: string[]
  threshold: number
  /** yoctoNEAR each trainer must bond to register (default 0: an open job). */
  trainerBondYocto?: bigint
  /** Blocks a deregistered trainer waits before withdraw_bond (contract default: 86 400). */
  unbondingBlocks?: number
}
export interface RegisterTrainerInput {
  job: string
  peerId: string
  /** Hex ed25519 signature by the peer's key of protocol/trainer-registration.ts's message (signTrainerRegistration). */
  peerSignature: string
  /** attached deposit: at least the job's bond */
  bondYocto: bigint
}
export interface ReportCheatInput { job: string, accountId: string, round: number, reason: string }
export interface AttestInput {
  job: string
  round: number
  checkpointCid: string
  weightsSha256: string
  contributionsRoot: string
  /** Sum of the accepted samples under `contributionsRoot` (protocol/contributions.ts contributionsTotal). */
  contributionsTotal: number
  evalLoss: number
}
/** One leaf of a final round's contributions tree and its proof (protocol/contributions.ts contributionProof). */
export interface ClaimRewardInput { job: string, round: number, peerId: string, weight: number, proof: string[] }

/** DAO parameters to set: quorum and threshold in basis points, the voting period in blocks, the proposal bond. */
export interface DaoParamsInput { quorumBps?: number, thresholdBps?: number, votingPeriodBlocks?: number, proposalBondYocto?: bigint, rewardPerRound?: bigint }
/** What a DAO proposal asks for: a job (`create_job`'s arguments), new parameters, a treasury payment, or only text. */
export type DaoProposalInput = { description: string } & (
  | { kind: 'text' }
  | { kind: 'train', job: CreateJobInput }
  | { kind: 'params', params: DaoParamsInput }
  | { kind: 'transfer', receiverId: string, amount: bigint, memo?: string }
)
/** dao_init's arguments: the initial token distribution (the contract's own entry is the treasury) and parameters. */
export interface DaoInitInput {
  initial: Array<[string, bigint]>
  params?: DaoParamsInput
  metadata?: { name?: string, symbol?: string, decimals?: number, icon?: string }
}

/** An abort releases the caller; a transaction already sent may still land on chain. */
export interface LedgerCallOptions { signal?: AbortSignal }

export interface Ledger {
  /** The account whose key signs calls. */
  readonly accountId: string
  readonly contractId: string
  createJob: (input: CreateJobInput, options?: LedgerCallOptions) => Promise<Job>
  getJob: (job: string, options?: LedgerCallOptions) => Promise<Job | null>
  attest: (input: AttestInput, options?: LedgerCallOptions) => Promise<RoundAnchors>
  getAnchor: (job: string, round: number, options?: LedgerCallOptions) => Promise<RoundAnchors | null>
  latestAnchor: (job: string, options?: LedgerCallOptions) => Promise<CheckpointAnchor | null>
  getAttestations: (job: string, round: number, options?: LedgerCallOptions) => Promise<Attestation[]>
  registerTrainer: (input: RegisterTrainerInput, options?: LedgerCallOptions) => Promise<Trainer>
  deregisterTrainer: (job: string, options?: LedgerCallOptions) => Promise<Trainer>
  withdrawBond: (job: string, options?: LedgerCallOptions) => Promise<BondWithdrawal>
  reportCheat: (input: ReportCheatInput, options?: LedgerCallOptions) => Promise<Trainer>
  getTrainer: (job: string, accountId?: string, options?: LedgerCallOptions) => Promise<Trainer | null>
  getTrainerByPeer: (job: string, peerId: string, options?: LedgerCallOptions) => Promise<Trainer | null>
  /** Every trainer of the job (all pages); null for a job that is not on chain. */
  getTrainers: (job: string, options?: LedgerCallOptions) => Promise<Trainer[] | null>
  /** Whether contribution rewards may be paid to this peer: bound to a registered, unslashed trainer. */
  rewardEligible: (job: string, peerId: string, options?: LedgerCallOptions) => Promise<boolean>
  /** Claims a final round's reward for one contribution; the signing account must be the one bound to the peer. */
  claimReward: (input: ClaimRewardInput, options?: LedgerCallOptions) => Promise<RewardClaim>
  /** One contribution's reward, claimed or not; null for a job that is not on chain. */
  getReward: (job: string, round: number, peerId: string, options?: LedgerCallOptions) => Promise<Reward | null>
  /** Tokens minted by reward claims, of one job or of all. */
  rewardsMintedTotal: (job?: string, options?: LedgerCallOptions) => Promise<bigint>
  storageDeposit: (amountYocto?: bigint, accountId?: string, options?: LedgerCallOptions) => Promise<StorageBalance>
  storageBalanceOf: (accountId?: string, options?: LedgerCallOptions) => Promise<StorageBalance | null>
  /** NEP-141 balance of the DAO token (this account's by default). */
  ftBalanceOf: (accountId?: string, options?: LedgerCallOptions) => Promise<bigint>
  ftTotalSupply: (options?: LedgerCallOptions) => Promise<bigint>
  /** ft_transfer with the 1 yoctoNEAR NEP-141 requires. */
  ftTransfer: (receiverId: string, amount: bigint, memo?: string, options?: LedgerCallOptions) => Promise<void>
  /** One-time DAO set-up; only a ledger signing as the contract account itself can call it. */
  daoInit: (input: DaoInitInput, options?: LedgerCallOptions) => Promise<{ total_supply: string, params: DaoParams }>
  daoParams: (options?: LedgerCallOptions) => Promise<DaoParams>
  /** Attaches `bondYocto` (at least the DAO's proposal_bond; the whole deposit is the bond). */
  daoPropose: (input: DaoProposalInput, bondYocto: bigint, options?: LedgerCallOptions) => Promise<DaoProposal>
  daoVote: (id: number, vote: 'yes' | 'no', options?: LedgerCallOptions) => Promise<DaoProposal>
  daoFinalize: (id: number, options?: LedgerCallOptions) => Promise<DaoProposal>
  daoGetProposal: (id: number, options?: LedgerCallOptions) => Promise<DaoProposal | null>
  /** Every proposal, in id order (all pages). */
  daoListProposals: (options?: LedgerCallOptions) => Promise<DaoProposal[]>
  close: () => Promise<void>
}

function createJobArgs (i: CreateJobInput): Record<string, unknown> {
  const args: Record<string, unknown> = { job: i.job, spec_cid: i.specCid, eval_cid: i.evalCid, validators: i.validators, threshold: i.threshold }
  if (i.trainerBondYocto != null) args.trainer_bond = i.trainerBondYocto.toString()
  if (i.unbondingBlocks != null) args.unbonding_blocks = i.unbondingBlocks
  return args
}

function daoParamsArgs (p: DaoParamsInput): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (p.quorumBps != null) out.quorum_bps = p.quorumBps
  if (p.thresholdBps != null) out.threshold_bps = p.thresholdBps
  if (p.votingPeriodBlocks != null) out.voting_period_blocks = p.votingPeriodBlocks
  if (p.proposalBondYocto != null) out.proposal_bond = p.proposalBondYocto.toString()
  if (p.rewardPerRound != null) out.reward_per_round = p.rewardPerRound.toString()
  return out
}

function proposalArgs (i: DaoProposalInput): Record<string, unknown> {
  const base = { kind: i.kind, description: i.description }
  switch (i.kind) {
    case 'text': return base
    case 'train': return { ...base, job: createJobArgs(i.job) }
    case 'params': return { ...base, params: daoParamsArgs(i.params) }
    case 'transfer': return { ...base, receiver_id: i.receiverId, amount: i.amount.toString(), ...(i.memo != null ? { memo: i.memo } : {}) }
  }
}

/** Shared method naming and result validation over `call` and `view`. */
export abstract class ContractLedger implements Ledger {
  abstract readonly accountId: string
  abstract readonly contractId: string
  /** Signs and sends a function call; resolves with the decoded JSON result or throws LedgerCallError. */
  protected abstract call (method: string, args: Record<string, unknown>, deposit: bigint): Promise<unknown>
  protected abstract view (method: string, args: Record<string, unknown>): Promise<unknown>
  abstract close (): Promise<void>

  async createJob (i: CreateJobInput, o: LedgerCallOptions = {}): Promise<Job> {
    return parseChainResult(jobSchema, await abortable(async () => await this.call('create_job', createJobArgs(i), 0n), o.signal), 'create_job result')
  }

  async registerTrainer (i: RegisterTrainerInput, o: LedgerCallOptions = {}): Promise<Trainer> {
    return parseChainResult(trainerSchema, await abortable(async () => await this.call('register_trainer', { job: i.job, peer_id: i.peerId, peer_signature: i.peerSignature }, i.bondYocto), o.signal), 'register_trainer result')
  }

  async deregisterTrainer (job: string, o: LedgerCallOptions = {}): Promise<Trainer> {
    return parseChainResult(trainerSchema, await abortable(async () => await this.call('deregister_trainer', { job }, 0n), o.signal), 'deregister_trainer result')
  }

  async withdrawBond (job: string, o: LedgerCallOptions = {}): Promise<BondWithdrawal> {
    // 1 yoctoNEAR: only a full-access key can move funds out (as storage_withdraw).
    return parseChainResult(bondWithdrawalSchema, await abortable(async () => await this.call('withdraw_bond', { job }, 1n), o.signal), 'withdraw_bond result')
  }

  async reportCheat (i: ReportCheatInput, o: LedgerCallOptions = {}): Promise<Trainer> {
    const args = { job: i.job, account_id: i.accountId, round: i.round, reason: i.reason }
    return parseChainResult(trainerSchema, await abortable(async () => await this.call('report_cheat', args, 0n), o.signal), 'report_cheat result')
  }

  async getTrainer (job: string, accountId = this.accountId, o: LedgerCallOptions = {}): Promise<Trainer | null> {
    return parseChainResult(trainerSchema.nullable(), await abortable(async () => await this.view('get_trainer', { job, account_id: accountId }), o.signal), 'trainer')
  }

  async getTrainerByPeer (job: string, peerId: string, o: LedgerCallOptions = {}): Promise<Trainer | null> {
    return parseChainResult(trainerSchema.nullable(), await abortable(async () => await this.view('get_trainer_by_peer', { job, peer_id: peerId }), o.signal), 'trainer')
  }

  async getTrainers (job: string, o: LedgerCallOptions = {}): Promise<Trainer[] | null> {
    const out: Trainer[] = []
    for (;;) {
      const page = parseChainResult(trainersPageSchema.nullable(), await abortable(async () => await this.view('get_trainers', { job, from_index: out.length, limit: TRAINERS_PAGE }), o.signal), 'trainers')
      if (page == null) return null
      out.push(...page.trainers)
      // A page shorter than asked, or the total reached, ends the listing (a withdrawal between pages may shorten it).
      if (page.trainers.length < TRAINERS_PAGE || out.length >= page.total) return out
    }
  }

  async rewardEligible (job: string, peerId: string, o: LedgerCallOptions = {}): Promise<boolean> {
    return parseChainResult(z.boolean(), await abortable(async () => await this.view('reward_eligible', { job, peer_id: peerId }), o.signal), 'reward eligibility')
  }

  async claimReward (i: ClaimRewardInput, o: LedgerCallOptions = {}): Promise<RewardClaim> {
    const args = { job: i.job, round: i.round, peer_id: i.peerId, weight: i.weight, proof: i.proof }
    return parseChainResult(rewardClaimSchema, await abortable(async () => await this.call('claim_reward', args, 0n), o.signal), 'claim_reward result')
  }

  async getReward (job: string, round: number, peerId: string, o: LedgerCallOptions = {}): Promise<Reward | null> {
    return parseChainResult(rewardSchema.nullable(), await abortable(async () => await this.view('get_reward', { job, round, peer_id: peerId }), o.signal), 'reward')
  }

  async rewardsMintedTotal (job?: string, o: LedgerCallOptions = {}): Promise<bigint> {
    return BigInt(parseChainResult(tokenAmountSchema, await abortable(async () => await this.view('rewards_minted_total', job != null ? { job } : {}), o.signal), 'rewards minted'))
  }

  async getJob (job: string, o: LedgerCallOptions = {}): Promise<Job | null> {
    return parseChainResult(jobSchema.nullable(), await abortable(async () => await this.view('get_job', { job }), o.signal), 'job')
  }

  async attest (i: AttestInput, o: LedgerCallOptions = {}): Promise<RoundAnchors> {
    // The loss travels as JSON.stringify writes it (the float64's shortest round-trip text), which is what the
    // contract compares: equal bits, equal text. NaN and infinities have no JSON form.
    if (!Number.isFinite(i.evalLoss)) throw new RangeError(`eval loss must be a finite number, got ${i.evalLoss}`)
    if (!Number.isSafeInteger(i.contributionsTotal) || i.contributionsTotal < 0) throw new RangeError(`contributions total must be an integer in 0..2^53-1, got ${i.contributionsTotal}`)
    const args = {
      job: i.job, round: i.round, checkpoint_cid: i.checkpointCid, weights_sha256: i.weightsSha256,
      contributions_root: i.contributionsRoot, contributions_total: i.contributionsTotal, eval_loss: i.evalLoss
    }
    return parseChainResult(roundAnchorsSchema, await abortable(async () => await this.call('attest', args, 0n), o.signal), 'attest result')
  }

  async getAnchor (job: string, round: number, o: LedgerCallOptions = {}): Promise<RoundAnchors | null> {
    return parseChainResult(roundAnchorsSchema.nullable(), await abortable(async () => await this.view('get_anchor', { job, round }), o.signal), 'anchor')
  }

  async latestAnchor (job: string, o: LedgerCallOptions = {}): Promise<CheckpointAnchor | null> {
    return parseChainResult(anchorSchema.nullable(), await abortable(async () => await this.view('latest_anchor', { job }), o.signal), 'latest anchor')
  }

  async getAttestations (job: string, round: number, o: LedgerCallOptions = {}): Promise<Attestation[]> {
    return parseChainResult(z.array(attestationSchema), await abortable(async () => await this.view('get_attestations', { job, round }), o.signal), 'attestations')
  }

  async storageDeposit (amountYocto = DEFAULT_STORAGE_DEPOSIT, accountId?: string, o: LedgerCallOptions = {}): Promise<StorageBalance> {
    return parseChainResult(storageBalanceSchema, await abortable(async () => await this.call('storage_deposit', accountId != null ? { account_id: accountId } : {}, amountYocto), o.signal), 'storage balance')
  }

  async storageBalanceOf (accountId = this.accountId, o: LedgerCallOptions = {}): Promise<StorageBalance | null> {
    return parseChainResult(storageBalanceSchema.nullable(), await abortable(async () => await this.view('storage_balance_of', { account_id: accountId }), o.signal), 'storage balance')
  }

  async ftBalanceOf (accountId = this.accountId, o: LedgerCallOptions = {}): Promise<bigint> {
    return BigInt(parseChainResult(tokenAmountSchema, await abortable(async () => await this.view('ft_balance_of', { account_id: accountId }), o.signal), 'token balance'))
  }

  async ftTotalSupply (o: LedgerCallOptions = {}): Promise<bigint> {
    return BigInt(parseChainResult(tokenAmountSchema, await abortable(async () => await this.view('ft_total_supply', {}), o.signal), 'token supply'))
  }

  async ftTransfer (receiverId: string, amount: bigint, memo?: string, o: LedgerCallOptions = {}): Promise<void> {
    const args = { receiver_id: receiverId, amount: amount.toString(), ...(memo != null ? { memo } : {}) }
    await abortable(async () => await this.call('ft_transfer', args, 1n), o.signal)
  }

  async daoInit (i: DaoInitInput, o: LedgerCallOptions = {}): Promise<{ total_supply: string, params: DaoParams }> {
    const args: Record<string, unknown> = { initial: i.initial.map(([a, n]) => [a, n.toString()]) }
    if (i.params != null) args.params = daoParamsArgs(i.params)
    if (i.metadata != null) args.metadata = i.metadata
    const schema = z.object({ total_supply: tokenAmountSchema, params: daoParamsSchema })
    return parseChainResult(schema, await abortable(async () => await this.call('dao_init', args, 0n), o.signal), 'dao_init result')
  }

  async daoParams (o: LedgerCallOptions = {}): Promise<DaoParams> {
    return parseChainResult(daoParamsSchema, await abortable(async () => await this.view('dao_params', {}), o.signal), 'DAO parameters')
  }

  async daoPropose (i: DaoProposalInput, bondYocto: bigint, o: LedgerCallOptions = {}): Promise<DaoProposal> {
    return parseChainResult(daoProposalSchema, await abortable(async () => await this.call('dao_propose', proposalArgs(i), bondYocto), o.signal), 'dao_propose result')
  }

  async daoVote (id: number, vote: 'yes' | 'no', o: LedgerCallOptions = {}): Promise<DaoProposal> {
    return parseChainResult(daoProposalSchema, await abortable(async () => await this.call('dao_vote', { id, vote }, 0n), o.signal), 'dao_vote result')
  }

  async daoFinalize (id: number, o: LedgerCallOptions = {}): Promise<DaoProposal> {
    return parseChainResult(daoProposalSchema, await abortable(async () => await this.call('dao_finalize', { id }, 0n), o.signal), 'dao_finalize result')
  }

  async daoGetProposal (id: number, o: LedgerCallOptions = {}): Promise<DaoProposal | null> {
    return parseChainResult(daoProposalSchema.nullable(), await abortable(async () => await this.view('dao_get_proposal', { id }), o.signal), 'DAO proposal')
  }

  async daoListProposals (o: LedgerCallOptions = {}): Promise<DaoProposal[]> {
    const out: DaoProposal[] = []
    for (;;) {
      const page = parseChainResult(daoProposalsPageSchema, await abortable(async () => await this.view('dao_list_proposals', { from_index: out.length, limit: PROPOSALS_PAGE }), o.signal), 'DAO proposals')
      out.push(...page.proposals)
      if (page.proposals.length < PROPOSALS_PAGE || out.length >= page.total) return out
    }
  }
}
