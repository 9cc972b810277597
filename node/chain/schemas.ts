/** The contract's JSON results, validated at the edge where they leave the chain. */
import { z } from 'zod'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { PeerIdString, Sha256Hex } from '../../protocol/primitives.ts'

const account = z.string().min(2).max(64)
const yocto = z.string().regex(/^\d{1,39}$/)

export const jobSchema = z.object({
  job: z.string().min(1).max(64),
  owner: account,
  spec_cid: z.string().min(1),
  /** The evaluation dataset's CID; null only for jobs created before the contract required one. */
  eval_cid: z.string().min(1).nullable(),
  validators: z.array(account).min(1),
  threshold: z.number().int().positive(),
  created_at_block: z.number().int().nonnegative(),
  latest_final_round: z.number().int().nonnegative().nullable(),
  /** yoctoNEAR each trainer bonds; "0" is an open job (and what contracts deployed before bonds read as). */
  trainer_bond: yocto.default('0'),
  /** Blocks between deregister_trainer and withdraw_bond. */
  unbonding_blocks: z.number().int().positive().default(86400)
})
export type Job = z.infer<typeof jobSchema>

const claim = {
  checkpoint_cid: z.string().min(1),
  weights_sha256: Sha256Hex,
  contributions_root: Sha256Hex,
  /** Sum of the accepted samples under the root (reward shares divide by it); null only for rounds attested before it existed. */
  contributions_total: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).nullable().default(null),
  eval_loss: z.number()
}

export const candidateSchema = z.object({ ...claim, attesters: z.array(account).min(1) })
export type AnchorCandidate = z.infer<typeof candidateSchema>

export const anchorSchema = z.object({
  job: z.string(),
  round: z.number().int().nonnegative(),
  ...claim,
  attesters: z.array(account).min(1),
  /** Tokens the round mints to its contributors in all (the DAO's reward_per_round when it became final). */
  reward: yocto.default('0')
})
export type CheckpointAnchor = z.infer<typeof anchorSchema>

export const attestationSchema = z.object({ validator: account, ...claim })
export type Attestation = z.infer<typeof attestationSchema>

/** A round: its final anchor, every candidate, and (once final) the attestations that disagreed with the anchor. */
export const roundAnchorsSchema = z.object({
  job: z.string(),
  round: z.number().int().nonnegative(),
  final: anchorSchema.nullable(),
  candidates: z.array(candidateSchema),
  dissent: z.array(attestationSchema)
})
export type RoundAnchors = z.infer<typeof roundAnchorsSchema>

const block = z.number().int().nonnegative()

export const cheatReportSchema = z.object({ validator: account, round: z.number().int().nonnegative(), reason: z.string().min(1).max(256), block })
export type CheatReport = z.infer<typeof cheatReportSchema>

/** A trainer's registration on a job: its peer id, bond, and where it stands (active, unbonding or slashed). */
export const trainerSchema = z.object({
  job: z.string().min(1).max(64),
  account_id: account,
  peer_id: PeerIdString,
  bond: yocto,
  status: z.enum(['active', 'unbonding', 'slashed']),
  registered_at_block: block,
  unbonding_at_block: block.nullable(),
  withdrawable_at_block: block.nullable(),
  slashed_at_block: block.nullable(),
  reports: z.array(cheatReportSchema)
})
export type Trainer = z.infer<typeof trainerSchema>

export const trainersPageSchema = z.object({ job: z.string().min(1).max(64), total: z.number().int().nonnegative(), trainers: z.array(trainerSchema) })
export type TrainersPage = z.infer<typeof trainersPageSchema>

export const bondWithdrawalSchema = z.object({ job: z.string().min(1).max(64), account_id: account, bond: yocto })
export type BondWithdrawal = z.infer<typeof bondWithdrawalSchema>

export const storageBalanceSchema = z.object({ total: yocto, available: yocto })
export type StorageBalance = z.infer<typeof storageBalanceSchema>

/** The DAO's parameters (`dao_params`): quorum and threshold in basis points of the votable supply and of the votes cast. */
export const daoParamsSchema = z.object({
  quorum_bps: z.number().int().min(1).max(10000),
  threshold_bps: z.number().int().min(0).max(9999),
  voting_period_blocks: z.number().int().positive(),
  proposal_bond: yocto,
  /** Token units minted per final round of a job, shared pro rata by its contributors; "0" (the default) mints nothing. */
  reward_per_round: yocto.default('0')
})
export type DaoParams = z.infer<typeof daoParamsSchema>

/** A DAO proposal (`dao_get_proposal`); `action` is the kind's arguments (null for text), token amounts are U128 strings. */
export const daoProposalSchema = z.object({
  id: z.number().int().nonnegative(),
  proposer: account,
  kind: z.enum(['train', 'params', 'transfer', 'text']),
  description: z.string().min(1).max(2000),
  action: z.record(z.string(), z.unknown()).nullable(),
  bond: yocto,
  status: z.enum(['open', 'passed', 'rejected', 'expired', 'failed']),
  yes: yocto,
  no: yocto,
  votes: z.number().int().nonnegative(),
  votable_supply: yocto,
  quorum_bps: z.number().int().min(1).max(10000),
  threshold_bps: z.number().int().min(0).max(9999),
  created_at_block: block,
  voting_ends_at_block: block,
  finalized_at_block: block.nullable(),
  reason: z.string().nullable(),
  job: z.string().min(1).max(64).nullable()
})
export type DaoProposal = z.infer<typeof daoProposalSchema>

export const daoProposalsPageSchema = z.object({ total: z.number().int().nonnegative(), proposals: z.array(daoProposalSchema) })

/** One contribution's reward (`get_reward`): the round's reward and total once final, the claim once made. */
export const rewardSchema = z.object({
  job: z.string().min(1).max(64),
  round: z.number().int().nonnegative(),
  peer_id: PeerIdString,
  final: z.boolean(),
  round_reward: yocto.nullable(),
  contributions_total: z.number().int().nonnegative().nullable(),
  round_minted: yocto,
  claimed: z.boolean(),
  account_id: account.nullable(),
  weight: z.number().int().nonnegative().nullable(),
  amount: yocto.nullable(),
  claimed_at_block: block.nullable()
})
export type Reward = z.infer<typeof rewardSchema>

/** A paid claim (`claim_reward`): amount = floor(round_reward × weight / contributions_total). */
export const rewardClaimSchema = z.object({
  job: z.string().min(1).max(64),
  round: z.number().int().nonnegative(),
  peer_id: PeerIdString,
  account_id: account,
  weight: z.number().int().nonnegative(),
  contributions_total: z.number().int().positive(),
  round_reward: yocto,
  amount: yocto,
  block
})
export type RewardClaim = z.infer<typeof rewardClaimSchema>

/** A NEP-141 amount (`ft_balance_of`, `ft_total_supply`): a U128 decimal string. */
export const tokenAmountSchema = yocto

/** Parses `value` with `schema`, or throws InvalidMessageError naming what the chain returned. */
export function parseChainResult<T> (schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value)
  if (!r.success) throw new InvalidMessageError(`malformed ${what} from the chain: ${r.error.message}`, value)
  return r.data
}

/** Decodes a contract's return bytes as JSON; empty means no value. */
export function decodeJson (bytes: Uint8Array, what: string): unknown {
  const text = Buffer.from(bytes).toString('utf8')
  if (text === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    throw new InvalidMessageError(`${what}: the chain returned non-JSON`, text.slice(0, 200))
  }
}
