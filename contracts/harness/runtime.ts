/**
 * A NEAR-like runtime over many accounts: transactions become receipts, receipts run in order, a
 * receipt waits for the receipts it depends on (promise_then / promise_and) and its callback sees their
 * results. Each receipt commits or reverts on its own, as in NEAR; a failed receipt refunds its deposit.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { base58btc } from 'multiformats/bases/base58'
import { ContractError } from './errors.ts'
import { runMethod, type Action, type CallOutcome, type ContractStorage, type PromiseResult } from './host.ts'
import { DEFAULT_PREPAID_GAS } from './gas.ts'
import { meterWasm } from './meter.ts'

/** NEAR's storage staking price per byte (yoctoNEAR). */
export const STORAGE_PRICE_PER_BYTE = 10n ** 19n
/** Bytes every account record counts toward storage_usage (nearcore's num_bytes_account). */
export const ACCOUNT_RECORD_BYTES = 100n

export interface AccountState {
  balance: bigint
  locked: bigint
  codeHash: string | undefined
  storage: Map<string, Uint8Array>
  storageUsage: bigint
}

export type TxAction =
  | Action
  | { type: 'CreateAccount' }
  | { type: 'DeployContract', code: Uint8Array }

export type ExecutionStatus =
  | { SuccessValue: string }
  | { SuccessReceiptId: string }
  | { Failure: { ActionError: { index: number, kind: Record<string, unknown> } } }

export interface ReceiptOutcome {
  id: string
  executorId: string
  predecessorId: string
  logs: string[]
  receiptIds: string[]
  gasBurnt: bigint
  status: ExecutionStatus
}

export interface TransactionOutcome {
  /** The final result, following promise_return forwarding. */
  status: { SuccessValue: string } | { Failure: { ActionError: { index: number, kind: Record<string, unknown> } } }
  transactionReceiptId: string
  receipts: ReceiptOutcome[]
}

export interface BlockContext {
  height: bigint
  timestampNs: bigint
  epochHeight?: bigint
}

interface PendingReceipt {
  id: string
  predecessorId: string
  receiverId: string
  signerId: string
  signerPublicKey: Uint8Array
  actions: TxAction[]
  /** Receipts whose results this one receives, in order (promise results). */
  dependsOn: string[]
}

type Resolution = { kind: 'value', value: Uint8Array } | { kind: 'failed' } | { kind: 'forward', to: string }

function keyHex (k: Uint8Array): string { return Buffer.from(k).toString('hex') }

/** Writes during a receipt land here first; `commit` applies them only when the receipt succeeds. */
class StorageOverlay implements ContractStorage {
  readonly pending = new Map<string, Uint8Array | null>()
  constructor (private readonly base: Map<string, Uint8Array>) {}
  get (key: Uint8Array): Uint8Array | undefined {
    const k = keyHex(key)
    if (this.pending.has(k)) return this.pending.get(k) ?? undefined
    return this.base.get(k)
  }
  set (key: Uint8Array, value: Uint8Array): void { this.pending.set(keyHex(key), value) }
  delete (key: Uint8Array): void { this.pending.set(keyHex(key), null) }
  commit (): void {
    for (const [k, v] of this.pending) { if (v == null) this.base.delete(k); else this.base.set(k, v) }
  }
}

function failure (index: number, err: unknown): ExecutionStatus & { Failure: unknown } {
  if (err instanceof ContractError) {
    if (err.kind === 'LackBalanceForState' || err.kind === 'AccountDoesNotExist' || err.kind === 'NotEnoughBalance') {
      return { Failure: { ActionError: { index, kind: { [err.kind]: { message: err.message } } } } }
    }
    const inner = err.kind === 'GuestPanic'
      ? { HostError: { GuestPanic: { panic_msg: err.message } } }
      : err.kind === 'MethodNotFound'
        ? { MethodResolveError: 'MethodNotFound' }
        : err.kind === 'CompilationError' ? { CompilationError: { message: err.message } } : { HostError: { [err.kind]: { message: err.message } } }
    return { Failure: { ActionError: { index, kind: { FunctionCallError: { ExecutionError: err.message, ...inner } } } } }
  }
  return { Failure: { ActionError: { index, kind: { FunctionCallError: { ExecutionError: String((err as Error)?.message ?? err) } } } } }
}

export class Runtime {
  readonly accounts = new Map<string, AccountState>()
  private readonly codes = new Map<string, { bytes: Uint8Array, module: WebAssembly.Module }>()

  createAccount (accountId: string, balance: bigint): AccountState {
    const acc: AccountState = { balance, locked: 0n, codeHash: undefined, storage: new Map(), storageUsage: ACCOUNT_RECORD_BYTES }
    this.accounts.set(accountId, acc)
    return acc
  }

  account (accountId: string): AccountState | undefined { return this.accounts.get(accountId) }

  code (codeHash: string): Uint8Array | undefined { return this.codes.get(codeHash)?.bytes }

  /** Deploys code to an existing account (genesis and DeployContract actions). */
  deploy (accountId: string, code: Uint8Array): void {
    const acc = this.mustAccount(accountId)
    const codeHash = base58btc.baseEncode(sha256(code))
    if (!this.codes.has(codeHash)) this.codes.set(codeHash, { bytes: code, module: new WebAssembly.Module(meterWasm(code)) })
    const oldLen = acc.codeHash != null ? BigInt(this.codes.get(acc.codeHash)!.bytes.length) : 0n
    acc.storageUsage += BigInt(code.length) - oldLen
    acc.codeHash = codeHash
  }

  private mustAccount (id: string): AccountState {
    const a = this.accounts.get(id)
    if (a == null) throw new ContractError('AccountDoesNotExist', `account ${id} does not exist`)
    return a
  }

  /** A view call: no state changes, no promises, no predecessor (NEAR's rules for `call_function` queries). */
  async view (contractId: string, method: string, args: Uint8Array, block: BlockContext): Promise<{ result: Uint8Array, logs: string[] }> {
    const acc = this.mustAccount(contractId)
    if (acc.codeHash == null) throw new ContractError('CompilationError', `CodeDoesNotExist: ${contractId}`)
    const overlay = new StorageOverlay(acc.storage)
    const out = await runMethod(this.codes.get(acc.codeHash)!.module, method, {
      currentAccountId: contractId, signerAccountId: '', signerPublicKey: new Uint8Array(32), predecessorAccountId: '',
      input: args, blockHeight: block.height, blockTimestampNs: block.timestampNs, epochHeight: block.epochHeight ?? 1n,
      accountBalance: acc.balance, accountLockedBalance: acc.locked, storageUsage: acc.storageUsage, attachedDeposit: 0n,
      prepaidGas: DEFAULT_PREPAID_GAS, randomSeed: new Uint8Array(32), isView: true, promiseResults: []
    }, overlay)
    return { result: out.returnData ?? new Uint8Array(0), logs: out.logs }
  }

  /**
   * Executes a transaction's actions as a receipt and every receipt it spawns, to completion.
   * The caller has already checked the signature and nonce and debits nothing else: gas is not charged
   * to balances on this chain, only attached deposits move.
   */
  async executeTransaction (tx: { hash: Uint8Array, signerId: string, signerPublicKey: Uint8Array, receiverId: string, actions: TxAction[] }, block: BlockContext): Promise<TransactionOutcome> {
    const signer = this.mustAccount(tx.signerId)
    const deposit = tx.actions.reduce((s, a) => s + ('deposit' in a ? a.deposit : 0n), 0n)
    if (deposit > signer.balance) throw new ContractError('NotEnoughBalance', `NotEnoughBalance: ${tx.signerId} has ${signer.balance}, needs ${deposit}`)
    signer.balance -= deposit
    let counter = 0
    const newId = (): string => base58btc.baseEncode(sha256(Uint8Array.from([...tx.hash, ...Buffer.from(String(counter++))])))
    const first: PendingReceipt = { id: newId(), predecessorId: tx.signerId, receiverId: tx.receiverId, signerId: tx.signerId, signerPublicKey: tx.signerPublicKey, actions: tx.actions, dependsOn: [] }
    const queue: PendingReceipt[] = [first]
    const results = new Map<string, Resolution>()
    const outcomes: ReceiptOutcome[] = []

    const resolve = (id: string): Resolution | undefined => {
      let r = results.get(id)
      while (r?.kind === 'forward') r = results.get(r.to)
      return r
    }

    let guard = 0
    while (queue.length > 0) {
      if (++guard > 10_000) throw new Error('receipt loop does not terminate')
      const idx = queue.findIndex(r => r.dependsOn.every(d => resolve(d) != null))
      if (idx < 0) throw new Error('receipts wait on each other')
      const receipt = queue.splice(idx, 1)[0]
      const promiseResults: PromiseResult[] = receipt.dependsOn.map(d => {
        const r = resolve(d)!
        return r.kind === 'value' ? { status: 'success', value: r.value } : { status: 'failed' }
      })
      const { outcome, spawned, resolution } = await this.executeReceipt(receipt, promiseResults, block, newId)
      results.set(receipt.id, resolution)
      outcomes.push(outcome)
      queue.push(...spawned)
    }
    const final = resolve(first.id)!
    const status = final.kind === 'value'
      ? { SuccessValue: Buffer.from(final.value).toString('base64') }
      : (outcomes.find(o => 'Failure' in o.status)?.status as TransactionOutcome['status']) ?? { Failure: { ActionError: { index: 0, kind: {} } } }
    return { status, transactionReceiptId: first.id, receipts: outcomes }
  }

  private async executeReceipt (receipt: PendingReceipt, promiseResults: PromiseResult[], block: BlockContext, newId: () => string): Promise<{ outcome: ReceiptOutcome, spawned: PendingReceipt[], resolution: Resolution }> {
    const logs: string[] = []
    let gasBurnt = 0n
    const totalDeposit = receipt.actions.reduce((s, a) => s + ('deposit' in a ? a.deposit : 0n), 0n)
    const refund = (): void => {
      if (totalDeposit > 0n) { const p = this.accounts.get(receipt.predecessorId); if (p != null) p.balance += totalDeposit }
    }
    const fail = (index: number, err: unknown): { outcome: ReceiptOutcome, spawned: PendingReceipt[], resolution: Resolution } => {
      refund()
      return { outcome: { id: receipt.id, executorId: receipt.receiverId, predecessorId: receipt.predecessorId, logs, receiptIds: [], gasBurnt, status: failure(index, err) }, spawned: [], resolution: { kind: 'failed' } }
    }

    let acc = this.accounts.get(receipt.receiverId)
    const createsAccount = receipt.actions[0]?.type === 'CreateAccount'
    if (acc == null && !createsAccount) return fail(0, new ContractError('AccountDoesNotExist', `AccountDoesNotExist: ${receipt.receiverId}`))
    // Work on copies; the account is replaced only when every action succeeded.
    const work: AccountState = acc != null
      ? { ...acc }
      : { balance: 0n, locked: 0n, codeHash: undefined, storage: new Map(), storageUsage: ACCOUNT_RECORD_BYTES }
    const overlay = new StorageOverlay(work.storage)
    let pendingCode: Uint8Array | undefined
    let lastValue: Uint8Array = new Uint8Array(0)
    let returned: { promise: number, outcome: CallOutcome } | undefined
    let spawned: PendingReceipt[] = []

    for (let i = 0; i < receipt.actions.length; i++) {
      const action = receipt.actions[i]
      try {
        if (action.type === 'CreateAccount') {
          if (acc != null) throw new ContractError('AccountDoesNotExist', `AccountAlreadyExists: ${receipt.receiverId}`)
        } else if (action.type === 'DeployContract') {
          pendingCode = action.code
          new WebAssembly.Module(action.code) // eslint-disable-line no-new -- compile check, as NEAR does at deploy
        } else if (action.type === 'Transfer') {
          work.balance += action.deposit
        } else {
          work.balance += action.deposit
          const codeHash = work.codeHash
          const module = pendingCode != null ? new WebAssembly.Module(meterWasm(pendingCode)) : codeHash != null ? this.codes.get(codeHash)?.module : undefined
          if (module == null) throw new ContractError('CompilationError', `CodeDoesNotExist: ${receipt.receiverId}`)
          let out: CallOutcome
          try {
            out = await runMethod(module, action.methodName, {
              currentAccountId: receipt.receiverId, signerAccountId: receipt.signerId, signerPublicKey: receipt.signerPublicKey,
              predecessorAccountId: receipt.predecessorId, input: action.args, blockHeight: block.height, blockTimestampNs: block.timestampNs,
              epochHeight: block.epochHeight ?? 1n, accountBalance: work.balance, accountLockedBalance: work.locked,
              storageUsage: work.storageUsage, attachedDeposit: action.deposit, prepaidGas: action.gas,
              randomSeed: sha256(Buffer.from(receipt.id)), isView: false, promiseResults
            }, overlay)
          } catch (err) {
            if (err instanceof ContractError) gasBurnt += action.gas
            throw err
          }
          gasBurnt += out.gasUsed
          logs.push(...out.logs)
          work.balance = out.balance
          work.storageUsage = out.storageUsage
          lastValue = out.returnData ?? new Uint8Array(0)
          const ids = out.promises.map(() => newId())
          spawned = spawned.concat(this.promisesToReceipts(out, ids, receipt))
          if (out.returnPromise != null) returned = { promise: out.returnPromise, outcome: out }
        }
      } catch (err) {
        return fail(i, err)
      }
    }

    const codeLen = pendingCode != null ? BigInt(pendingCode.length) - (work.codeHash != null ? BigInt(this.codes.get(work.codeHash)!.bytes.length) : 0n) : 0n
    if (work.balance < (work.storageUsage + codeLen) * STORAGE_PRICE_PER_BYTE) {
      return fail(receipt.actions.length - 1, new ContractError('LackBalanceForState', `LackBalanceForState: ${receipt.receiverId} needs ${(work.storageUsage + codeLen) * STORAGE_PRICE_PER_BYTE} to cover storage, has ${work.balance}`))
    }
    overlay.commit()
    this.accounts.set(receipt.receiverId, work)
    if (pendingCode != null) this.deploy(receipt.receiverId, pendingCode)

    let resolution: Resolution = { kind: 'value', value: lastValue }
    let status: ExecutionStatus = { SuccessValue: Buffer.from(lastValue).toString('base64') }
    if (returned != null) {
      const target = this.promiseReceiptId(returned.outcome, returned.promise, spawned)
      resolution = { kind: 'forward', to: target }
      status = { SuccessReceiptId: target }
    }
    return {
      outcome: { id: receipt.id, executorId: receipt.receiverId, predecessorId: receipt.predecessorId, logs, receiptIds: spawned.map(r => r.id), gasBurnt, status },
      spawned,
      resolution
    }
  }

  /** promise_return of a promise_and is not supported by NEAR either: it must name a receipt. */
  private promiseReceiptId (out: CallOutcome, promise: number, spawned: PendingReceipt[]): string {
    const receiptIndexes = out.promises.map((p, i) => p.kind === 'receipt' ? i : -1).filter(i => i >= 0)
    const pos = receiptIndexes.indexOf(promise)
    if (pos < 0) throw new ContractError('InvalidPromiseIndex', 'promise_return of a promise_and')
    return spawned[spawned.length - receiptIndexes.length + pos].id
  }

  private promisesToReceipts (out: CallOutcome, ids: string[], parent: PendingReceipt): PendingReceipt[] {
    const receiptsOf = (idx: number): string[] => {
      const p = out.promises[idx]
      return p.kind === 'receipt' ? [ids[idx]] : p.members.flatMap(receiptsOf)
    }
    const receipts: PendingReceipt[] = []
    out.promises.forEach((p, i) => {
      if (p.kind !== 'receipt') return
      receipts.push({
        id: ids[i],
        predecessorId: parent.receiverId,
        receiverId: p.receiverId,
        signerId: parent.signerId,
        signerPublicKey: parent.signerPublicKey,
        actions: p.actions,
        dependsOn: p.after.flatMap(receiptsOf)
      })
    })
    return receipts
  }
}
