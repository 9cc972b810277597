/** The dev chain's results in the JSON shapes NEAR's RPC returns (FinalExecutionOutcome, block, views). */
import type { Block, CommittedTransaction } from '../dev-chain/chain.ts'
import type { TxAction } from '../../../contracts/harness/index.ts'

export function blockView (b: Block, chainId: string): Record<string, unknown> {
  const ns = BigInt(b.timestampMs) * 1_000_000n
  return {
    author: 'dev-chain',
    header: {
      height: Number(b.height), hash: b.hash, prev_hash: b.prevHash, timestamp: Number(ns), timestamp_nanosec: ns.toString(),
      epoch_id: '11111111111111111111111111111111', next_epoch_id: '11111111111111111111111111111111', chain_id: chainId,
      gas_price: '100000000', total_supply: '0', latest_protocol_version: 73, prev_state_root: '11111111111111111111111111111111',
      chunks_included: 1, validator_proposals: [], approvals: [], signature: 'ed25519:1111111111111111111111111111111111111111111111111111111111111111'
    },
    chunks: [],
    tx_hashes: b.txHashes
  }
}

function actionView (a: TxAction): unknown {
  switch (a.type) {
    case 'FunctionCall': return { FunctionCall: { method_name: a.methodName, args: Buffer.from(a.args).toString('base64'), gas: Number(a.gas), deposit: a.deposit.toString() } }
    case 'Transfer': return { Transfer: { deposit: a.deposit.toString() } }
    case 'CreateAccount': return 'CreateAccount'
    case 'DeployContract': return { DeployContract: { code: Buffer.from(a.code).toString('base64') } }
  }
}

export function finalExecutionOutcome (c: CommittedTransaction): Record<string, unknown> {
  const { tx, outcome, block } = c
  return {
    final_execution_status: 'FINAL',
    status: outcome.status,
    transaction: {
      signer_id: tx.signerId, public_key: tx.publicKeyString, nonce: Number(tx.nonce), receiver_id: tx.receiverId,
      actions: tx.actions.map(actionView), signature: 'ed25519:' + tx.hashBase58, hash: tx.hashBase58, priority_fee: 0
    },
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
