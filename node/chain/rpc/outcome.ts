/** The dev chain's results in the JSON shapes NEAR's RPC returns (FinalExecutionOutcome, block, chunk, views). */
import { sha256 } from '@noble/hashes/sha2.js'
import type { Block, CommittedTransaction, DevChain } from '../dev-chain/chain.ts'
import { b58, type DecodedTransaction } from '../dev-chain/transaction.ts'
import { BLOCK_PRODUCER } from './config-views.ts'
import type { AccessKeyPermission, ChainAction } from '../dev-chain/transaction.ts'

export function blockView (b: Block, chainId: string): Record<string, unknown> {
  const ns = BigInt(b.timestampMs) * 1_000_000n
  return {
    author: BLOCK_PRODUCER,
    header: {
      height: Number(b.height), hash: b.hash, prev_hash: b.prevHash, timestamp: Number(ns), timestamp_nanosec: ns.toString(),
      epoch_id: '11111111111111111111111111111111', next_epoch_id: '11111111111111111111111111111111', chain_id: chainId,
      gas_price: '100000000', total_supply: '0', latest_protocol_version: 73, prev_state_root: '11111111111111111111111111111111',
      chunks_included: 1, validator_proposals: [], approvals: [], signature: 'ed25519:1111111111111111111111111111111111111111111111111111111111111111'
    },
    chunks: [chunkHeaderView(b)],
    tx_hashes: b.txHashes
  }
}

const ZERO_HASH = '11111111111111111111111111111111'

/** Each dev-chain block holds one chunk (shard 0) with the block's transactions; its hash is derived from the block's. */
export const chunkHash = (b: Block): string => b58(sha256(Buffer.from(`nearai-dev-chunk:${b.hash}`)))

function chunkHeaderView (b: Block): Record<string, unknown> {
  return {
    chunk_hash: chunkHash(b), prev_block_hash: b.prevHash, outcome_root: ZERO_HASH, prev_state_root: ZERO_HASH, encoded_merkle_root: ZERO_HASH,
    encoded_length: 0, height_created: Number(b.height), height_included: Number(b.height), shard_id: 0, gas_used: 0, gas_limit: 1_000_000_000_000_000,
    balance_burnt: '0', outgoing_receipts_root: ZERO_HASH, tx_root: ZERO_HASH, validator_proposals: [],
    signature: 'ed25519:1111111111111111111111111111111111111111111111111111111111111111'
  }
}

export function chunkView (b: Block, chain: DevChain): Record<string, unknown> {
  return {
    author: BLOCK_PRODUCER, header: chunkHeaderView(b),
    transactions: b.txHashes.map(h => chain.transaction(h)).filter(c => c != null).map(c => transactionView(c.tx)),
    receipts: []
  }
}

/** NEAR's SignedTransactionView; the signature is the transaction's own (its last 64 bytes). */
function transactionView (tx: DecodedTransaction): Record<string, unknown> {
  return {
    signer_id: tx.signerId, public_key: tx.publicKeyString, nonce: Number(tx.nonce), receiver_id: tx.receiverId,
    actions: tx.actions.map(actionView), signature: 'ed25519:' + b58(tx.bytes.subarray(tx.bytes.length - 64)), hash: tx.hashBase58, priority_fee: 0
  }
}

/**
 * The receipts EXPERIMENTAL_tx_status lists (NEAR's ReceiptView): the transaction's own receipt. Receipts its
 * contract calls spawned are in receipts_outcome; the harness does not keep their actions, so they are not listed here.
 */
export function receiptViews (c: CommittedTransaction): Array<Record<string, unknown>> {
  const { tx, outcome } = c
  return [{
    predecessor_id: tx.signerId, receiver_id: tx.receiverId, receipt_id: outcome.transactionReceiptId, priority: 0,
    receipt: { Action: { signer_id: tx.signerId, signer_public_key: tx.publicKeyString, gas_price: '100000000', output_data_receivers: [], input_data_ids: [], actions: tx.actions.map(actionView), is_promise_yield: false } }
  }]
}

/** NEAR's AccessKeyPermissionView: "FullAccess" or { FunctionCall: { allowance, receiver_id, method_names } }. */
export function permissionView (p: AccessKeyPermission): unknown {
  return p.kind === 'FullAccess' ? 'FullAccess' : { FunctionCall: { allowance: p.allowance?.toString() ?? null, receiver_id: p.receiverId, method_names: p.methodNames } }
}

function actionView (a: ChainAction): unknown {
  switch (a.type) {
    case 'FunctionCall': return { FunctionCall: { method_name: a.methodName, args: Buffer.from(a.args).toString('base64'), gas: Number(a.gas), deposit: a.deposit.toString() } }
    case 'Transfer': return { Transfer: { deposit: a.deposit.toString() } }
    case 'CreateAccount': return 'CreateAccount'
    case 'DeployContract': return { DeployContract: { code: Buffer.from(a.code).toString('base64') } }
    case 'AddKey': return { AddKey: { public_key: a.publicKey, access_key: { nonce: Number(a.nonce), permission: permissionView(a.permission) } } }
    case 'DeleteKey': return { DeleteKey: { public_key: a.publicKey } }
  }
}

export function finalExecutionOutcome (c: CommittedTransaction): Record<string, unknown> {
  const { tx, outcome, block } = c
  return {
    final_execution_status: 'FINAL',
    status: outcome.status,
    transaction: transactionView(tx),
    transaction_outcome: {
      id: tx.hashBase58, block_hash: block.hash, proof: [],
      outcome: { logs: [], receipt_ids: [outcome.transactionReceiptId], gas_burnt: 0, tokens_burnt: '0', executor_id: tx.signerId, status: { SuccessReceiptId: outcome.transactionReceiptId }, metadata: { version: 1, gas_profile: null } }
    },
    receipts_outcome: outcome.receipts.map(r => ({
      id: r.id, block_hash: block.hash, proof: [],
      outcome: { logs: r.logs, receipt_ids: r.receiptIds, gas_burnt: Number(r.gasBurnt), tokens_burnt: '0', executor_id: r.executorId, status: r.status, metadata: { version: 3, gas_profile: [] } }
    }))
  }
}
