/**
 * Automatic attestation of a job's published checkpoints by the node's NEAR account, when that account
 * is one of the job's validators. The training loop hands over each published round; nothing here may
 * stop or slow that loop: `attest` never throws (failures come back as `{ outcome: 'failed' }` and are
 * logged), and `attestInBackground` queues rounds and attests them one at a time, in round order.
 *
 * @example
 * ```ts
 * const ledger = await openLedger(ledgerConfigFrom(config.chain, home))
 * const attester = new CheckpointAttester({ ledger, job: 'mnist', logger })
 * void attester.attestInBackground({ round, checkpointCid, weightsSha256, contributions, evalLoss })
 * // at shutdown
 * await attester.drain(); await ledger.close()
 * ```
 */
import type { Logger } from 'pino'
import { contributionsRoot, contributionsTotal, type Contribution } from '../../protocol/contributions.ts'
import type { NodeConfig } from '../config/schema.ts'
import { ConfigError } from '../config/load.ts'
import { DEFAULT_CONTRACT_ACCOUNT } from './dev-chain/genesis.ts'
import { DEFAULT_STORAGE_DEPOSIT, LedgerCallError, type Job, type Ledger, type RoundAnchors } from './ledger.ts'
import type { LedgerConfig } from './index.ts'
import { backoff, sleep } from '../time/clock.ts'

/** Top up the storage deposit when less than this is available: 0.01 NEAR pays for 1 kB (two attestations or so). */
export const DEFAULT_MIN_STORAGE_AVAILABLE = 10n ** 22n

export interface CheckpointAttestationInput {
  round: number
  checkpointCid: string
  /** Hex sha256 of the checkpoint's weights (the manifest's `weights.sha256`). */
  weightsSha256: string
  /** Accepted samples per peer in this round; committed to by `contributionsRoot`, summed into `contributionsTotal`. */
  contributions: readonly Contribution[]
  evalLoss: number
}

export type AttestOutcome =
  /** This account's attestation was recorded; `final` says whether the round has a final anchor now. */
  | { outcome: 'attested', round: number, contributionsRoot: string, contributionsTotal: number, anchors: RoundAnchors, final: boolean }
  /**
   * This account had attested the round before (an earlier run, or a retry whose first try landed).
   * `sameClaim` compares that attestation with this input (null when it could not be read).
   */
  | { outcome: 'already', round: number, contributionsRoot: string, contributionsTotal: number | null, anchors: RoundAnchors | null, final: boolean, sameClaim: boolean | null }
  | { outcome: 'not-validator', round: number }
  | { outcome: 'unknown-job', round: number }
  | { outcome: 'failed', round: number, error: Error }

export interface RetryOptions {
  /** Tries in all, the first included. */
  attempts: number
  initialDelayMs: number
  maxDelayMs: number
}

export interface CheckpointAttesterInit {
  ledger: Ledger
  job: string
  logger: Logger
  retry?: Partial<RetryOptions>
  /** Deposit more when the account's available storage balance is below this (yoctoNEAR). */
  minStorageAvailable?: bigint
  /** How much one top-up deposits (yoctoNEAR); spent from the signing account. */
  storageDeposit?: bigint
  /** Injected for tests; the backoff waits through it. */
  sleep?: (ms: number) => Promise<void>
}

const DEFAULT_RETRY: RetryOptions = { attempts: 4, initialDelayMs: 500, maxDelayMs: 8_000 }

const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNABORTED'])
const TRANSIENT_NAMES = new Set(['FetchError', 'TimeoutError', 'TransactionTimeoutError', 'NodeIsSyncingError', 'NotSyncedYetError', 'NoSyncedBlocksError', 'InternalRpcError', 'UnknownBlockError'])
const TRANSIENT_MESSAGE = /fetch failed|socket hang up|network|timed? ?out|ECONNREFUSED|ECONNRESET|too many requests|\b(429|502|503|504)\b|InvalidNonce|nonce/i
/** Panics of the contract itself: retrying them cannot help. */
const CONTRACT_PANIC = /smart contract panicked|ExecutionError|FunctionCallError|GuestPanic|already attested|is not a validator|unknown job|storage/i

/**
 * Whether a failed chain call may succeed if tried again: network errors, RPC timeouts, nodes still
 * syncing, nonce races. Contract panics are never transient. NearLedger wraps every failure in a
 * LedgerCallError with the original error as `details`, so causes and details are searched too.
 */
export function isTransientChainError (err: unknown): boolean {
  const chain: unknown[] = []
  for (let e: unknown = err, depth = 0; e != null && depth < 5; depth++) {
    chain.push(e)
    const next = (e as { cause?: unknown }).cause ?? (e as { details?: unknown }).details
    e = next instanceof Error ? next : null
  }
  if (chain.some(e => e instanceof Error && CONTRACT_PANIC.test(e.message))) return false
  return chain.some(e => {
    if (!(e instanceof Error)) return false
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && (TRANSIENT_CODES.has(code) || code.startsWith('UND_ERR_'))) return true
    return TRANSIENT_NAMES.has(e.name) || TRANSIENT_MESSAGE.test(e.message)
  })
}

function asError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/** What this node commits to about a round's contributions: the Merkle root and the samples under it. */
interface RootAndTotal { root: string, total: number }

interface Queued { input: CheckpointAttestationInput, resolve: (o: AttestOutcome) => void }

export class CheckpointAttester {
  readonly job: string
  private readonly ledger: Ledger
  private readonly log: Logger
  private readonly retry: RetryOptions
  private readonly minStorageAvailable: bigint
  private readonly storageDepositAmount: bigint
  private readonly sleep: (ms: number) => Promise<void>
  private jobRecord: Job | null = null
  private lastSkip: AttestOutcome['outcome'] | null = null
  private readonly queue: Queued[] = []
  private worker: Promise<void> | null = null

  constructor (init: CheckpointAttesterInit) {
    this.ledger = init.ledger
    this.job = init.job
    this.log = init.logger.child({ component: 'chain:auto-attest', job: init.job, account: init.ledger.accountId })
    this.retry = { ...DEFAULT_RETRY, ...init.retry }
    if (!(this.retry.attempts >= 1)) throw new RangeError('retry.attempts must be at least 1')
    this.minStorageAvailable = init.minStorageAvailable ?? DEFAULT_MIN_STORAGE_AVAILABLE
    this.storageDepositAmount = init.storageDeposit ?? DEFAULT_STORAGE_DEPOSIT
    this.sleep = init.sleep ?? (async ms => { await sleep(ms) })
  }

  /** Rounds waiting in the background queue or being attested now. */
  get pending (): number { return this.queue.length + (this.worker != null ? 1 : 0) }

  /** Attests one round now. Never throws: failures are logged and returned as `{ outcome: 'failed' }`. */
  async attest (input: CheckpointAttestationInput): Promise<AttestOutcome> {
    const round = input.round
    try {
      const root: RootAndTotal = { root: contributionsRoot(this.job, round, input.contributions), total: contributionsTotal(input.contributions) }
      const job = await this.lookupJob()
      if (job == null) return this.skip({ outcome: 'unknown-job', round }, 'job is not on chain: not attesting')
      if (!job.validators.includes(this.ledger.accountId)) return this.skip({ outcome: 'not-validator', round }, 'this account is not a validator of the job: not attesting')
      this.lastSkip = null
      await this.ensureStorage()
      return await this.submit(input, root)
    } catch (err) {
      const error = asError(err)
      this.log.error({ round, err: error }, 'checkpoint attestation failed')
      return { outcome: 'failed', round, error }
    }
  }

  /**
   * Queues a round for attestation and returns at once; rounds are attested one at a time, lowest
   * round first. The promise resolves with the outcome (it never rejects), and may be ignored.
   */
  async attestInBackground (input: CheckpointAttestationInput): Promise<AttestOutcome> {
    return await new Promise(resolve => {
      let at = this.queue.length
      while (at > 0 && this.queue[at - 1].input.round > input.round) at--
      this.queue.splice(at, 0, { input, resolve })
      if (this.worker == null) this.worker = this.work()
    })
  }

  /** Resolves when the background queue is empty and nothing is in flight (for shutdown). */
  async drain (): Promise<void> {
    while (this.worker != null) await this.worker
  }

  private async work (): Promise<void> {
    while (true) {
      const next = this.queue.shift()
      if (next == null) { this.worker = null; return } // synchronously, so a new item starts a new worker
      next.resolve(await this.attest(next.input))
    }
  }

  private skip (outcome: AttestOutcome, msg: string): AttestOutcome {
    // Said once at info while it stays so, not every round.
    this.log[this.lastSkip === outcome.outcome ? 'debug' : 'info']({ round: outcome.round }, msg)
    this.lastSkip = outcome.outcome
    return outcome
  }

  /** The job from the chain, cached once found (validators and threshold never change). */
  private async lookupJob (): Promise<Job | null> {
    if (this.jobRecord == null) this.jobRecord = await this.withRetry('get_job', async () => await this.ledger.getJob(this.job))
    return this.jobRecord
  }

  private async ensureStorage (force = false): Promise<void> {
    const balance = await this.withRetry('storage_balance_of', async () => await this.ledger.storageBalanceOf())
    if (!force && balance != null && BigInt(balance.available) >= this.minStorageAvailable) return
    this.log.info({ available: balance?.available ?? null, deposit: this.storageDepositAmount.toString() }, 'depositing for contract storage')
    await this.withRetry('storage_deposit', async () => await this.ledger.storageDeposit(this.storageDepositAmount))
  }

  private async submit (input: CheckpointAttestationInput, root: RootAndTotal): Promise<AttestOutcome> {
    const round = input.round
    const claim = { job: this.job, round, checkpointCid: input.checkpointCid, weightsSha256: input.weightsSha256, contributionsRoot: root.root, contributionsTotal: root.total, evalLoss: input.evalLoss }
    let toppedUp = false
    while (true) {
      try {
        const anchors = await this.withRetry('attest', async () => await this.ledger.attest(claim))
        const final = anchors.final != null
        this.log.info({ round, cid: input.checkpointCid, final, attesters: anchors.final?.attesters }, final ? 'checkpoint attested; round final' : 'checkpoint attested')
        if (anchors.final != null && anchors.final.checkpoint_cid !== input.checkpointCid) {
          this.log.warn({ round, ours: input.checkpointCid, final: anchors.final.checkpoint_cid }, 'the round\'s final anchor is not the checkpoint this node attested')
        }
        return { outcome: 'attested', round, contributionsRoot: root.root, contributionsTotal: root.total, anchors, final }
      } catch (err) {
        if (!(err instanceof LedgerCallError)) throw err
        const m = err.message
        if (/already attested/.test(m)) return await this.already(input, root)
        if (/is not a validator/.test(m)) { this.jobRecord = null; return this.skip({ outcome: 'not-validator', round }, 'the contract says this account is not a validator: not attesting') }
        if (/unknown job/.test(m)) { this.jobRecord = null; return this.skip({ outcome: 'unknown-job', round }, 'the contract does not know the job: not attesting') }
        if (!toppedUp && /no storage deposit|insufficient storage balance/.test(m)) {
          toppedUp = true
          await this.ensureStorage(true)
          continue
        }
        throw err
      }
    }
  }

  private async already (input: CheckpointAttestationInput, root: RootAndTotal): Promise<AttestOutcome> {
    const round = input.round
    let anchors: RoundAnchors | null = null
    let sameClaim: boolean | null = null
    try {
      anchors = await this.withRetry('get_anchor', async () => await this.ledger.getAnchor(this.job, round))
      const mine = (await this.withRetry('get_attestations', async () => await this.ledger.getAttestations(this.job, round)))
        .find(a => a.validator === this.ledger.accountId)
      if (mine != null) {
        sameClaim = mine.checkpoint_cid === input.checkpointCid && mine.weights_sha256 === input.weightsSha256 &&
          mine.contributions_root === root.root && mine.contributions_total === root.total && mine.eval_loss === input.evalLoss
      }
    } catch (err) {
      this.log.warn({ round, err: asError(err) }, 'could not read back the earlier attestation')
    }
    if (sameClaim === false) this.log.warn({ round }, 'this account attested a different claim for the round earlier')
    else this.log.info({ round }, 'round already attested by this account')
    return { outcome: 'already', round, contributionsRoot: root.root, contributionsTotal: root.total, anchors, final: anchors?.final != null, sameClaim }
  }

  /** Runs `fn`, trying again with exponential backoff while it fails with a transient chain error. */
  private async withRetry<T> (what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn()
      } catch (err) {
        if (attempt >= this.retry.attempts || !isTransientChainError(err)) throw err
        const delay = backoff(attempt, { initialMs: this.retry.initialDelayMs, maxMs: this.retry.maxDelayMs })
        this.log.warn({ what, attempt, delayMs: delay, err: asError(err) }, 'chain call failed; retrying')
        await this.sleep(delay)
      }
    }
  }
}

/**
 * The `LedgerConfig` for `openLedger` from the node's `chain` configuration. On `dev` without an
 * account, read-only use signs as alice.test (a dev account, like the CLI's default); attesting needs
 * the validator's own account. Other networks need the account, whose key comes from near-cli
 * credentials, and the contract.
 */
export function ledgerConfigFrom (chain: NodeConfig['chain'], home: string): LedgerConfig {
  const { network, accountId, contractId, rpcUrl, credentialsFile, attest } = chain
  if (network === 'dev') {
    if (rpcUrl != null) throw new ConfigError('chain.rpcUrl does not apply to the embedded dev chain: to reach a served dev chain (`nearai chain serve`) set chain.network to "custom"')
    if (credentialsFile != null) throw new ConfigError('chain.credentialsFile does not apply to the embedded dev chain: its accounts have built-in keys')
    if (accountId == null && attest) throw new ConfigError('chain.accountId is required to attest checkpoints: set it to the validator account (or set chain.attest to false)')
    return { network: 'dev', home, accountId: accountId ?? 'alice.test', contractId: contractId ?? DEFAULT_CONTRACT_ACCOUNT }
  }
  if (accountId == null) throw new ConfigError(`chain.accountId is required with chain.network "${network}": it names the account that signs and its near-cli credentials`)
  if (contractId == null) throw new ConfigError(`chain.contractId is required with chain.network "${network}": the account of the NearAI contract`)
  if (network === 'custom' && rpcUrl == null) throw new ConfigError('chain.rpcUrl is required with chain.network "custom"')
  return { network, accountId, contractId, rpcUrl, credentialsFile }
}
