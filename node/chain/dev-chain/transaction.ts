/**
 * NEAR transactions in their borsh layout (the one near-api-js produces): decoding, hashing, signature
 * checks, and building signed transactions for the embedded ledger and tests.
 */
import { deserialize } from 'borsh'
import { sha256 } from '@noble/hashes/sha2.js'
import { ed25519 } from '@noble/curves/ed25519.js'
import { base58btc } from 'multiformats/bases/base58'
import { KeyPair, SCHEMA, Signature, SignedTransaction, actions as actionCreators, createTransaction, encodeTransaction, type KeyPairString } from 'near-api-js'
import type { TxAction } from '../../../contracts/harness/index.ts'
import { InvalidTransactionError } from './errors.ts'

/** An access key's permission, as NEAR's AccessKeyPermission (a function-call key or a full-access key). */
export type AccessKeyPermission =
  | { kind: 'FullAccess' }
  | { kind: 'FunctionCall', allowance: bigint | null, receiverId: string, methodNames: string[] }

/** Key actions: the dev chain applies them itself (the contract harness runs the others). */
export type KeyAction =
  | { type: 'AddKey', publicKey: string, nonce: bigint, permission: AccessKeyPermission }
  | { type: 'DeleteKey', publicKey: string }

export type ChainAction = TxAction | KeyAction

export const isKeyAction = (a: ChainAction): a is KeyAction => a.type === 'AddKey' || a.type === 'DeleteKey'

function decodePublicKey (pk: any, index: number): string {
  if (pk?.ed25519Key == null) throw new InvalidTransactionError(`action ${index}: only ed25519 keys are supported`, { ActionsValidation: { UnsupportedProtocolFeature: { protocol_feature: 'secp256k1 access keys', version: 0 } } })
  return publicKeyString(Uint8Array.from(pk.ed25519Key.data))
}

function decodePermission (p: any): AccessKeyPermission {
  if (p?.functionCall != null) {
    const fc = p.functionCall
    return { kind: 'FunctionCall', allowance: fc.allowance == null ? null : BigInt(fc.allowance), receiverId: fc.receiverId, methodNames: [...fc.methodNames] }
  }
  return { kind: 'FullAccess' }
}

export interface DecodedTransaction {
  bytes: Uint8Array
  hash: Uint8Array
  hashBase58: string
  signerId: string
  publicKey: Uint8Array
  publicKeyString: string
  nonce: bigint
  receiverId: string
  blockHash: Uint8Array
  actions: ChainAction[]
}

export const b58 = (b: Uint8Array): string => base58btc.baseEncode(b)
export const unb58 = (s: string): Uint8Array => base58btc.baseDecode(s)
export const publicKeyString = (pk: Uint8Array): string => `ed25519:${b58(pk)}`

const SIGNATURE_BYTES = 1 + 64

/** Decodes a SignedTransaction and verifies its ed25519 signature over sha256 of the transaction bytes. */
export function decodeSignedTransaction (bytes: Uint8Array): DecodedTransaction {
  let raw: any
  try {
    raw = deserialize(SCHEMA.SignedTransaction, bytes)
  } catch (err) {
    throw new InvalidTransactionError(`malformed transaction: ${(err as Error).message}`, { InvalidTxError: 'Malformed' })
  }
  const tx = raw.transaction
  if (tx.publicKey.ed25519Key == null || raw.signature.ed25519Signature == null) {
    throw new InvalidTransactionError('only ed25519 keys are supported', 'InvalidSignature')
  }
  // The signed bytes are the transaction's borsh encoding: everything before the signature.
  const txBytes = bytes.subarray(0, bytes.length - SIGNATURE_BYTES)
  const hash = sha256(txBytes)
  const publicKey = Uint8Array.from(tx.publicKey.ed25519Key.data)
  if (!ed25519.verify(Uint8Array.from(raw.signature.ed25519Signature.data), hash, publicKey)) {
    throw new InvalidTransactionError('signature does not verify', 'InvalidSignature')
  }
  const actions: ChainAction[] = tx.actions.map((a: any, index: number): ChainAction => {
    if (a.functionCall != null) {
      return { type: 'FunctionCall', methodName: a.functionCall.methodName, args: Uint8Array.from(a.functionCall.args), gas: BigInt(a.functionCall.gas), deposit: BigInt(a.functionCall.deposit) }
    }
    if (a.transfer != null) return { type: 'Transfer', deposit: BigInt(a.transfer.deposit) }
    if (a.createAccount != null) return { type: 'CreateAccount' }
    if (a.deployContract != null) return { type: 'DeployContract', code: Uint8Array.from(a.deployContract.code) }
    if (a.addKey != null) return { type: 'AddKey', publicKey: decodePublicKey(a.addKey.publicKey, index), nonce: BigInt(a.addKey.accessKey.nonce), permission: decodePermission(a.addKey.accessKey.permission) }
    if (a.deleteKey != null) return { type: 'DeleteKey', publicKey: decodePublicKey(a.deleteKey.publicKey, index) }
    throw new InvalidTransactionError(`action ${index} (${Object.keys(a)[0]}) is not supported by the dev chain`, { ActionsValidation: { UnsupportedProtocolFeature: { protocol_feature: Object.keys(a)[0], version: 0 } } })
  })
  return {
    bytes, hash, hashBase58: b58(hash), signerId: tx.signerId, publicKey, publicKeyString: publicKeyString(publicKey),
    nonce: BigInt(tx.nonce), receiverId: tx.receiverId, blockHash: Uint8Array.from(tx.blockHash), actions
  }
}

export interface FunctionCallSpec { methodName: string, args: Uint8Array, gas: bigint, deposit: bigint }

/** Builds and signs a function-call transaction the way near-api-js does. */
export function signFunctionCall (opts: { signerId: string, secretKey: KeyPairString, receiverId: string, nonce: bigint, blockHash: Uint8Array, calls: FunctionCallSpec[] }): Uint8Array {
  const keyPair = KeyPair.fromString(opts.secretKey)
  const actions = opts.calls.map(c => actionCreators.functionCall(c.methodName, c.args, c.gas, c.deposit))
  const tx = createTransaction(opts.signerId, keyPair.getPublicKey(), opts.receiverId, opts.nonce, actions, opts.blockHash)
  const hash = sha256(encodeTransaction(tx))
  const { signature } = keyPair.sign(hash)
  return encodeTransaction(new SignedTransaction({ transaction: tx, signature: new Signature({ keyType: 0, data: signature }) }))
}
