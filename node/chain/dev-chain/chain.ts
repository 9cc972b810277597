/**
 * The embedded dev chain: accounts with access keys and nonces, signed NEAR transactions, one block per
 * transaction (automine, like Hardhat Network), state executed by the contract harness and persisted as
 * a journal of blocks that is replayed and verified at open.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { sha256 } from '@noble/hashes/sha2.js'
import { z } from 'zod'
import { Runtime, type TransactionOutcome, type TxAction } from '../../../contracts/harness/index.ts'
import { Journal } from './journal.ts'
import { lockChainDir } from './dir-lock.ts'
import { decodeSignedTransaction, b58, unb58, publicKeyString, isKeyAction, type DecodedTransaction, type KeyAction } from './transaction.ts'
import { applyKeyActions, checkKeyPermission, failedKeyOutcome, keyActionsFailure, type AccessKey, type AccessKeyStore } from './access-keys.ts'
import { InvalidTransactionError, NoContractCodeError, ReplayMismatchError, StateTooLargeError, UnknownAccessKeyError, UnknownAccountError, UnknownBlockError } from './errors.ts'
import type { GenesisConfig } from './genesis.ts'

/** Blocks a transaction's reference block hash stays valid for (NEAR's transaction_validity_period is 86400). */
export const TX_VALIDITY_BLOCKS = 86_400n

export interface Block {
  height: bigint
  hash: string
  prevHash: string
  timestampMs: number
  txHashes: string[]
}

export interface CommittedTransaction {
  tx: DecodedTransaction
  outcome: TransactionOutcome
  block: Block
}

const genesisRecord = z.object({ type: z.literal('genesis'), genesis: z.object({
  chainId: z.string(), genesisTimeMs: z.number(),
  accounts: z.array(z.object({ accountId: z.string(), balance: z.string().regex(/^\d+$/), publicKey: z.string() })),
  contract: z.object({ accountId: z.string(), codeBase64: z.string() })
}) })
const blockRecord = z.object({ type: z.literal('block'), height: z.string().regex(/^\d+$/), hash: z.string(), prevHash: z.string(), timestampMs: z.number(), txs: z.array(z.string()) })

export interface DevChainOptions {
  /** Directory holding the journal (e.g. `<home>/chain`). Omit for an in-memory chain. */
  dir?: string
  /** Used only when the journal is new. */
  genesis: GenesisConfig
  /** Clock for block timestamps (ms); injected so tests control time. */
  now?: () => number
}

/** NEAR's trie_viewer_state_size_limit: view_state refuses a contract whose state is larger. */
export const VIEW_STATE_SIZE_LIMIT = 50_000

export class DevChain {
  readonly runtime = new Runtime()
  readonly blocks: Block[] = []
  private readonly blocksByHash = new Map<string, Block>()
  private readonly accessKeys: AccessKeyStore = new Map()
  private readonly txs = new Map<string, CommittedTransaction>()
  private tail: Promise<unknown> = Promise.resolve()
  private journal: Journal | undefined
  private unlock: (() => void) | undefined
  private readonly now: () => number
  genesis!: GenesisConfig
  /** Bytes cut from a torn journal tail at open (0 when the last shutdown was clean). */
  truncatedBytes = 0

  private constructor (now: () => number) { this.now = now }

  static async open (opts: DevChainOptions): Promise<DevChain> {
    const chain = new DevChain(opts.now ?? Date.now)
    if (opts.dir == null) {
      chain.applyGenesis(opts.genesis)
      return chain
    }
    mkdirSync(opts.dir, { recursive: true })
    const unlock = lockChainDir(opts.dir)
    try {
      const { journal, records, truncatedBytes } = Journal.open(join(opts.dir, 'journal.bin'))
      chain.truncatedBytes = truncatedBytes
      chain.journal = journal
      chain.unlock = unlock
      if (records.length === 0) {
        journal.append(Buffer.from(JSON.stringify({ type: 'genesis', genesis: opts.genesis })))
        chain.applyGenesis(opts.genesis)
      } else {
        await chain.replay(records)
      }
    } catch (err) {
      chain.close()
      unlock()
      throw err
    }
    return chain
  }

  get chainId (): string { return this.genesis.chainId }
  get head (): Block { return this.blocks[this.blocks.length - 1] }

  private applyGenesis (g: GenesisConfig): void {
    this.genesis = g
    for (const a of g.accounts) {
      this.runtime.createAccount(a.accountId, BigInt(a.balance))
      this.accessKeys.set(a.accountId, new Map([[a.publicKey, { nonce: 0n, permission: { kind: 'FullAccess' } }]]))
    }
    if (this.runtime.account(g.contract.accountId) == null) this.runtime.createAccount(g.contract.accountId, 0n)
    this.runtime.deploy(g.contract.accountId, Buffer.from(g.contract.codeBase64, 'base64'))
    const hash = b58(sha256(Buffer.from(JSON.stringify({ chainId: g.chainId, genesisTimeMs: g.genesisTimeMs, accounts: g.accounts, code: b58(sha256(Buffer.from(g.contract.codeBase64, 'base64'))) }))))
    this.pushBlock({ height: 0n, hash, prevHash: b58(new Uint8Array(32)), timestampMs: g.genesisTimeMs, txHashes: [] })
  }

  private pushBlock (b: Block): void {
    this.blocks.push(b)
    this.blocksByHash.set(b.hash, b)
  }

  private static blockHash (height: bigint, prevHash: string, timestampMs: number, txHashes: string[]): string {
    return b58(sha256(Buffer.from(JSON.stringify({ height: height.toString(), prevHash, timestampMs, txHashes }))))
  }

  /** Rebuilds state from the journal, re-executing every transaction and checking every block hash. */
  private async replay (records: Uint8Array[]): Promise<void> {
    const parse = (r: Uint8Array, i: number): unknown => {
      try { return JSON.parse(Buffer.from(r).toString('utf8')) } catch { throw new ReplayMismatchError(`journal record ${i} is not JSON`) }
    }
    const g = genesisRecord.safeParse(parse(records[0], 0))
    if (!g.success) throw new ReplayMismatchError('the journal does not start with a genesis record')
    this.applyGenesis(g.data.genesis)
    for (let i = 1; i < records.length; i++) {
      const b = blockRecord.safeParse(parse(records[i], i))
      if (!b.success) throw new ReplayMismatchError(`journal record ${i} is not a block`)
      const rec = b.data
      const { block } = await this.commit(rec.txs.map(t => Buffer.from(t, 'base64')), rec.timestampMs, false)
      if (block.hash !== rec.hash || block.height !== BigInt(rec.height) || block.prevHash !== rec.prevHash) {
        throw new ReplayMismatchError(`block ${rec.height} replays to ${block.hash}, journal says ${rec.hash}`)
      }
    }
  }

  /** Validates, executes and commits a signed transaction in a new block; serialized with other submits. */
  async submit (signedTx: Uint8Array): Promise<CommittedTransaction> {
    const run = this.tail.then(async () => {
      const { committed } = await this.commit([signedTx], Math.max(this.now(), this.head.timestampMs), true)
      return committed[0]
    })
    this.tail = run.catch(() => undefined)
    return await run
  }

  private validate (tx: DecodedTransaction): void {
    const keys = this.accessKeys.get(tx.signerId)
    if (keys == null) throw new InvalidTransactionError(`signer ${tx.signerId} does not exist`, { SignerDoesNotExist: { signer_id: tx.signerId } })
    const key = keys.get(tx.publicKeyString)
    if (key == null) throw new InvalidTransactionError(`access key ${tx.publicKeyString} of ${tx.signerId} does not exist`, { InvalidAccessKeyError: { AccessKeyNotFound: { account_id: tx.signerId, public_key: tx.publicKeyString } } })
    if (tx.nonce <= key.nonce) throw new InvalidTransactionError(`nonce ${tx.nonce} must exceed the access key's nonce ${key.nonce}`, { InvalidNonce: { tx_nonce: Number(tx.nonce), ak_nonce: Number(key.nonce) } })
    const ref = this.blocksByHash.get(b58(tx.blockHash))
    if (ref == null || this.head.height - ref.height > TX_VALIDITY_BLOCKS) throw new InvalidTransactionError('the transaction refers to an unknown or too old block', 'Expired')
    if (this.txs.has(tx.hashBase58)) throw new InvalidTransactionError('transaction already committed', { InvalidNonce: { tx_nonce: Number(tx.nonce), ak_nonce: Number(key.nonce) } })
    checkKeyPermission(key, tx)
  }

  private async commit (signedTxs: Uint8Array[], timestampMs: number, append: boolean): Promise<{ block: Block, committed: CommittedTransaction[] }> {
    const decoded = signedTxs.map(decodeSignedTransaction)
    for (const tx of decoded) this.validate(tx)
    const prev = this.head
    const height = prev.height + 1n
    const txHashes = decoded.map(t => t.hashBase58)
    const block: Block = { height, hash: DevChain.blockHash(height, prev.hash, timestampMs, txHashes), prevHash: prev.hash, timestampMs, txHashes }
    const committed: CommittedTransaction[] = []
    for (const tx of decoded) {
      const key = this.accessKeys.get(tx.signerId)!.get(tx.publicKeyString)!
      const previousNonce = key.nonce
      key.nonce = tx.nonce
      let outcome: TransactionOutcome
      try {
        const keyFailure = keyActionsFailure(this.accessKeys, tx)
        if (keyFailure != null) {
          outcome = failedKeyOutcome(tx, keyFailure)
        } else {
          const runtimeActions = tx.actions.filter((a): a is TxAction => !isKeyAction(a))
          outcome = await this.runtime.executeTransaction({ hash: tx.hash, signerId: tx.signerId, signerPublicKey: tx.publicKey, receiverId: tx.receiverId, actions: runtimeActions },
            { height, timestampNs: BigInt(timestampMs) * 1_000_000n })
          // Key actions belong to the transaction's first receipt: they apply when it succeeded.
          const keyActions = tx.actions.filter((a): a is KeyAction => isKeyAction(a))
          if (keyActions.length > 0 && !('Failure' in outcome.receipts[0].status)) applyKeyActions(this.accessKeys, tx.receiverId, keyActions, height)
        }
      } catch (err) {
        // NotEnoughBalance and friends: the transaction is rejected as a whole, as NEAR does before conversion.
        key.nonce = previousNonce // nothing of a rejected transaction is kept, its nonce included
        throw new InvalidTransactionError((err as Error).message, { NotEnoughBalance: { signer_id: tx.signerId, balance: '0', cost: '0' } })
      }
      committed.push({ tx, outcome, block })
    }
    if (append && this.journal != null) {
      // Durable before anyone hears of the block: the journal append fsyncs.
      this.journal.append(Buffer.from(JSON.stringify({ type: 'block', height: height.toString(), hash: block.hash, prevHash: block.prevHash, timestampMs, txs: signedTxs.map(t => Buffer.from(t).toString('base64')) })))
    }
    this.pushBlock(block)
    for (const c of committed) this.txs.set(c.tx.hashBase58, c)
    return { block, committed }
  }

  block (ref: { finality?: string, blockId?: string | number | bigint }): Block {
    if (ref.blockId == null) return this.head
    const b = typeof ref.blockId === 'string' && !/^\d+$/.test(ref.blockId) ? this.blocksByHash.get(ref.blockId) : this.blocks[Number(ref.blockId)]
    if (b == null) throw new UnknownBlockError(ref.blockId)
    return b
  }

  transaction (hash: string): CommittedTransaction | undefined { return this.txs.get(hash) }

  /** View calls run against the head state (the dev chain keeps no historical state). */
  async view (contractId: string, method: string, args: Uint8Array): Promise<{ result: Uint8Array, logs: string[], block: Block }> {
    if (this.runtime.account(contractId) == null) throw new UnknownAccountError(contractId)
    const block = this.head
    const out = await this.runtime.view(contractId, method, args, { height: block.height, timestampNs: BigInt(block.timestampMs) * 1_000_000n })
    return { ...out, block }
  }

  viewAccount (accountId: string): { amount: bigint, locked: bigint, codeHash: string, storageUsage: bigint } {
    const a = this.runtime.account(accountId)
    if (a == null) throw new UnknownAccountError(accountId)
    return { amount: a.balance, locked: a.locked, codeHash: a.codeHash ?? '11111111111111111111111111111111', storageUsage: a.storageUsage }
  }

  viewAccessKey (accountId: string, publicKey: string): AccessKey {
    if (this.runtime.account(accountId) == null) throw new UnknownAccountError(accountId)
    const k = this.accessKeys.get(accountId)?.get(publicKey)
    if (k == null) throw new UnknownAccessKeyError(publicKey)
    return { ...k }
  }

  /** Every access key of an account, sorted by public key. */
  viewAccessKeyList (accountId: string): Array<{ publicKey: string, key: AccessKey }> {
    if (this.runtime.account(accountId) == null) throw new UnknownAccountError(accountId)
    return [...(this.accessKeys.get(accountId) ?? new Map<string, AccessKey>())].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).map(([publicKey, key]) => ({ publicKey, key: { ...key } }))
  }

  /** The contract storage of an account whose keys start with `prefix`, in key order (as NEAR's trie walks it). */
  viewState (accountId: string, prefix: Uint8Array): Array<{ key: Uint8Array, value: Uint8Array }> {
    const a = this.runtime.account(accountId)
    if (a == null) throw new UnknownAccountError(accountId)
    const hexPrefix = Buffer.from(prefix).toString('hex')
    const items = [...a.storage].filter(([k]) => k.startsWith(hexPrefix)).sort(([x], [y]) => x < y ? -1 : x > y ? 1 : 0)
    const size = items.reduce((n, [k, v]) => n + k.length / 2 + v.length, 0)
    if (size > VIEW_STATE_SIZE_LIMIT) throw new StateTooLargeError(accountId)
    return items.map(([k, v]) => ({ key: Buffer.from(k, 'hex'), value: v }))
  }

  /** The deployed wasm of an account and its hash (base58 of sha256, NEAR's code_hash). */
  viewCode (accountId: string): { code: Uint8Array, hash: string } {
    const a = this.runtime.account(accountId)
    if (a == null) throw new UnknownAccountError(accountId)
    const code = a.codeHash == null ? undefined : this.runtime.code(a.codeHash)
    if (a.codeHash == null || code == null) throw new NoContractCodeError(accountId)
    return { code, hash: a.codeHash }
  }

  close (): void {
    this.journal?.close(); this.journal = undefined
    this.unlock?.(); this.unlock = undefined
  }
}

export { unb58, publicKeyString }
