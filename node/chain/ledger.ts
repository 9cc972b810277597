/**
 * The one view of the NearAI contract the rest of the node uses, whatever chain is behind it: the
 * embedded dev chain (`DevChainLedger`) or a NEAR network through near-api-js (`NearLedger`).
 * Implementations supply two primitives (a signed call and a view); this class names the contract's
 * methods and validates every result.
 */
import { z } from 'zod'
import {
  anchorSchema, attestationSchema, jobSchema, parseChainResult, roundAnchorsSchema, storageBalanceSchema,
  type Attestation, type CheckpointAnchor, type Job, type RoundAnchors, type StorageBalance
} from './schemas.ts'

export type { Attestation, CheckpointAnchor, Job, RoundAnchors, StorageBalance } from './schemas.ts'

export const DEFAULT_CALL_GAS = 100_000_000_000_000n // 100 Tgas
/** Deposit for storage_deposit when none is given: 0.1 NEAR covers a job or many attestations. */
export const DEFAULT_STORAGE_DEPOSIT = 10n ** 23n

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
}
export interface AttestInput { job: string, round: number, checkpointCid: string, weightsSha256: string, contributionsRoot: string, evalLoss: number }

export interface Ledger {
  /** The account whose key signs calls. */
  readonly accountId: string
  readonly contractId: string
  createJob: (input: CreateJobInput) => Promise<Job>
  getJob: (job: string) => Promise<Job | null>
  attest: (input: AttestInput) => Promise<RoundAnchors>
  getAnchor: (job: string, round: number) => Promise<RoundAnchors | null>
  latestAnchor: (job: string) => Promise<CheckpointAnchor | null>
  getAttestations: (job: string, round: number) => Promise<Attestation[]>
  storageDeposit: (amountYocto?: bigint, accountId?: string) => Promise<StorageBalance>
  storageBalanceOf: (accountId?: string) => Promise<StorageBalance | null>
  close: () => Promise<void>
}

/** Shared method naming and result validation over `call` and `view`. */
export abstract class ContractLedger implements Ledger {
  abstract readonly accountId: string
  abstract readonly contractId: string
  /** Signs and sends a function call; resolves with the decoded JSON result or throws LedgerCallError. */
  protected abstract call (method: string, args: Record<string, unknown>, deposit: bigint): Promise<unknown>
  protected abstract view (method: string, args: Record<string, unknown>): Promise<unknown>
  abstract close (): Promise<void>

  async createJob (i: CreateJobInput): Promise<Job> {
    return parseChainResult(jobSchema, await this.call('create_job', { job: i.job, spec_cid: i.specCid, eval_cid: i.evalCid, validators: i.validators, threshold: i.threshold }, 0n), 'create_job result')
  }

  async getJob (job: string): Promise<Job | null> {
    return parseChainResult(jobSchema.nullable(), await this.view('get_job', { job }), 'job')
  }

  async attest (i: AttestInput): Promise<RoundAnchors> {
    // The loss travels as JSON.stringify writes it (the float64's shortest round-trip text), which is what the
    // contract compares: equal bits, equal text. NaN and infinities have no JSON form.
    if (!Number.isFinite(i.evalLoss)) throw new RangeError(`eval loss must be a finite number, got ${i.evalLoss}`)
    const args = { job: i.job, round: i.round, checkpoint_cid: i.checkpointCid, weights_sha256: i.weightsSha256, contributions_root: i.contributionsRoot, eval_loss: i.evalLoss }
    return parseChainResult(roundAnchorsSchema, await this.call('attest', args, 0n), 'attest result')
  }

  async getAnchor (job: string, round: number): Promise<RoundAnchors | null> {
    return parseChainResult(roundAnchorsSchema.nullable(), await this.view('get_anchor', { job, round }), 'anchor')
  }

  async latestAnchor (job: string): Promise<CheckpointAnchor | null> {
    return parseChainResult(anchorSchema.nullable(), await this.view('latest_anchor', { job }), 'latest anchor')
  }

  async getAttestations (job: string, round: number): Promise<Attestation[]> {
    return parseChainResult(z.array(attestationSchema), await this.view('get_attestations', { job, round }), 'attestations')
  }

  async storageDeposit (amountYocto = DEFAULT_STORAGE_DEPOSIT, accountId?: string): Promise<StorageBalance> {
    return parseChainResult(storageBalanceSchema, await this.call('storage_deposit', accountId != null ? { account_id: accountId } : {}, amountYocto), 'storage balance')
  }

  async storageBalanceOf (accountId = this.accountId): Promise<StorageBalance | null> {
    return parseChainResult(storageBalanceSchema.nullable(), await this.view('storage_balance_of', { account_id: accountId }), 'storage balance')
  }
}
