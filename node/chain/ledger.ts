/**
 * The one view of the NearAI contract the rest of the node uses, whatever chain is behind it: the
 * embedded dev chain (`DevChainLedger`) or a NEAR network through near-api-js (`NearLedger`).
 * Implementations supply two primitives (a signed call and a view); this class names the contract's
 * methods and validates every result.
 */
import { z } from 'zod'
import { abortable } from '../time/clock.ts'
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
  storageDeposit: (amountYocto?: bigint, accountId?: string, options?: LedgerCallOptions) => Promise<StorageBalance>
  storageBalanceOf: (accountId?: string, options?: LedgerCallOptions) => Promise<StorageBalance | null>
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

  async createJob (i: CreateJobInput, o: LedgerCallOptions = {}): Promise<Job> {
    return parseChainResult(jobSchema, await abortable(async () => await this.call('create_job', { job: i.job, spec_cid: i.specCid, eval_cid: i.evalCid, validators: i.validators, threshold: i.threshold }, 0n), o.signal), 'create_job result')
  }

  async getJob (job: string, o: LedgerCallOptions = {}): Promise<Job | null> {
    return parseChainResult(jobSchema.nullable(), await abortable(async () => await this.view('get_job', { job }), o.signal), 'job')
  }

  async attest (i: AttestInput, o: LedgerCallOptions = {}): Promise<RoundAnchors> {
    // The loss travels as JSON.stringify writes it (the float64's shortest round-trip text), which is what the
    // contract compares: equal bits, equal text. NaN and infinities have no JSON form.
    if (!Number.isFinite(i.evalLoss)) throw new RangeError(`eval loss must be a finite number, got ${i.evalLoss}`)
    const args = { job: i.job, round: i.round, checkpoint_cid: i.checkpointCid, weights_sha256: i.weightsSha256, contributions_root: i.contributionsRoot, eval_loss: i.evalLoss }
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
}
