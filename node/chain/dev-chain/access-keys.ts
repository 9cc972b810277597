/**
 * Access keys of the dev chain, as NEAR keeps them: full-access and function-call keys with nonces, the checks
 * a transaction signed with a function-call key must pass, and the AddKey / DeleteKey actions (applied by the
 * chain, next to the contract harness that runs every other action).
 */
import { sha256 } from '@noble/hashes/sha2.js'
import type { TransactionOutcome } from '../../../contracts/harness/index.ts'
import { InvalidTransactionError } from './errors.ts'
import { b58, isKeyAction, type AccessKeyPermission, type DecodedTransaction, type KeyAction } from './transaction.ts'

export interface AccessKey { nonce: bigint, permission: AccessKeyPermission }

/** Keys by account, then by public key (`ed25519:<base58>`). */
export type AccessKeyStore = Map<string, Map<string, AccessKey>>

/** NEAR gives a key added at height h the nonce (h - 1) * 1e6, so transactions signed for an older key of the same bytes cannot replay. */
export const ACCESS_KEY_NONCE_RANGE_MULTIPLIER = 1_000_000n

/** The restrictions of a function-call key (nearcore's verify_and_charge_transaction); a full-access key passes. */
export function checkKeyPermission (key: AccessKey, tx: DecodedTransaction): void {
  const p = key.permission
  if (p.kind === 'FullAccess') return
  const fail = (inner: unknown, msg: string): never => { throw new InvalidTransactionError(msg, { InvalidAccessKeyError: inner }) }
  const action = tx.actions[0]
  if (tx.actions.length !== 1 || action.type !== 'FunctionCall') return fail('RequiresFullAccess', 'a function-call access key signs exactly one function call')
  if (action.deposit > 0n) return fail('DepositWithFunctionCall', 'a function-call access key cannot attach a deposit')
  if (tx.receiverId !== p.receiverId) return fail({ ReceiverMismatch: { tx_receiver: tx.receiverId, ak_receiver: p.receiverId } }, `the access key is for ${p.receiverId}, not ${tx.receiverId}`)
  if (p.methodNames.length > 0 && !p.methodNames.includes(action.methodName)) return fail({ MethodNameMismatch: { method_name: action.methodName } }, `the access key does not allow ${action.methodName}`)
}

/**
 * The ActionError the key actions of a transaction would end in, checked before anything runs (so a failed
 * AddKey leaves the other actions unapplied, as a failed receipt does in NEAR); undefined when they apply.
 */
export function keyActionsFailure (store: AccessKeyStore, tx: DecodedTransaction): { index: number, kind: Record<string, unknown> } | undefined {
  const createsAccount = tx.actions[0]?.type === 'CreateAccount'
  const present = new Set(store.get(tx.receiverId)?.keys() ?? [])
  for (let index = 0; index < tx.actions.length; index++) {
    const a = tx.actions[index]
    if (!isKeyAction(a)) continue
    if (tx.signerId !== tx.receiverId && !createsAccount) return { index, kind: { ActorNoPermission: { account_id: tx.receiverId, actor_id: tx.signerId } } }
    if (a.type === 'AddKey') {
      if (present.has(a.publicKey)) return { index, kind: { AddKeyAlreadyExists: { account_id: tx.receiverId, public_key: a.publicKey } } }
      present.add(a.publicKey)
    } else {
      if (!present.has(a.publicKey)) return { index, kind: { DeleteKeyDoesNotExist: { account_id: tx.receiverId, public_key: a.publicKey } } }
      present.delete(a.publicKey)
    }
  }
  return undefined
}

export function applyKeyActions (store: AccessKeyStore, accountId: string, actions: KeyAction[], height: bigint): void {
  let keys = store.get(accountId)
  if (keys == null) { keys = new Map(); store.set(accountId, keys) }
  for (const a of actions) {
    if (a.type === 'AddKey') keys.set(a.publicKey, { nonce: (height - 1n) * ACCESS_KEY_NONCE_RANGE_MULTIPLIER, permission: a.permission })
    else keys.delete(a.publicKey)
  }
}

/** The outcome of a transaction refused at its key actions: one failed receipt, nothing applied. */
export function failedKeyOutcome (tx: DecodedTransaction, failure: { index: number, kind: Record<string, unknown> }): TransactionOutcome {
  // The same id the harness gives a transaction's first receipt.
  const id = b58(sha256(Uint8Array.from([...tx.hash, ...Buffer.from('0')])))
  const status = { Failure: { ActionError: failure } }
  return { status, transactionReceiptId: id, receipts: [{ id, executorId: tx.receiverId, predecessorId: tx.signerId, logs: [], receiptIds: [], gasBurnt: 0n, status }] }
}
