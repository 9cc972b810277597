/**
 * The dev chain's configuration in NEAR's JSON shapes: `EXPERIMENTAL_genesis_config`,
 * `EXPERIMENTAL_protocol_config` (the genesis fields plus `runtime_config`), `validators` and `status`.
 * Values are the dev chain's own: one shard, one block producer that stakes nothing, a fixed gas price, NEAR's
 * storage price per byte and transaction validity period.
 */
import { STORAGE_PRICE_PER_BYTE } from '../../../contracts/harness/index.ts'
import type { DevChain } from '../dev-chain/chain.ts'
import { TX_VALIDITY_BLOCKS } from '../dev-chain/chain.ts'
import { devPublicKey } from '../dev-chain/genesis.ts'

/** The NEAR protocol version whose RPC shapes the server follows. */
export const PROTOCOL_VERSION = 73
export const GAS_PRICE = '100000000'
export const EPOCH_ID = '11111111111111111111111111111111'
/**
 * The dev chain's one block producer (the `author` of its blocks). It is not an account and stakes nothing:
 * it is reported so that tools which expect a validator set (near-cli's `validators` sums it) work.
 */
export const BLOCK_PRODUCER = 'dev-chain'
const producerKey = (): string => devPublicKey(BLOCK_PRODUCER)

/** The dev chain never changes epoch: one epoch spans every block it will make. */
const EPOCH_LENGTH = 1_000_000_000

const totalSupply = (chain: DevChain): bigint => chain.genesis.accounts.reduce((s, a) => s + BigInt(a.balance), 0n)

export function genesisConfigView (chain: DevChain): Record<string, unknown> {
  return {
    protocol_version: PROTOCOL_VERSION,
    genesis_time: new Date(chain.genesis.genesisTimeMs).toISOString(),
    chain_id: chain.chainId,
    genesis_height: 0,
    num_block_producer_seats: 1,
    num_block_producer_seats_per_shard: [1],
    avg_hidden_validator_seats_per_shard: [0],
    dynamic_resharding: false,
    protocol_upgrade_stake_threshold: [4, 5],
    epoch_length: EPOCH_LENGTH,
    gas_limit: 1_000_000_000_000_000,
    min_gas_price: GAS_PRICE,
    max_gas_price: GAS_PRICE,
    block_producer_kickout_threshold: 0,
    chunk_producer_kickout_threshold: 0,
    online_min_threshold: [90, 100],
    online_max_threshold: [99, 100],
    gas_price_adjustment_rate: [0, 1],
    validators: [{ account_id: BLOCK_PRODUCER, public_key: producerKey(), amount: '0' }],
    transaction_validity_period: Number(TX_VALIDITY_BLOCKS),
    protocol_reward_rate: [0, 1],
    max_inflation_rate: [0, 1],
    total_supply: totalSupply(chain).toString(),
    num_blocks_per_year: 31_536_000,
    protocol_treasury_account: chain.genesis.contract.accountId,
    fishermen_threshold: '0',
    minimum_stake_divisor: 10,
    shard_layout: { V0: { num_shards: 1, version: 0 } },
    num_chunk_only_producer_seats: 0,
    minimum_validators_per_shard: 0,
    max_kickout_stake_perc: 0,
    minimum_stake_ratio: [1, 6250]
  }
}

export function protocolConfigView (chain: DevChain): Record<string, unknown> {
  const { validators: _validators, total_supply: _supply, ...config } = genesisConfigView(chain)
  return {
    ...config,
    runtime_config: {
      storage_amount_per_byte: STORAGE_PRICE_PER_BYTE.toString(),
      // The dev chain charges no gas to balances (only attached deposits move): every fee is zero.
      transaction_costs: { burnt_gas_reward: [0, 1], pessimistic_gas_price_inflation_ratio: [1, 1] },
      account_creation_config: { min_allowed_top_level_account_length: 0, registrar_account_id: 'registrar' }
    }
  }
}

/** NEAR's EpochValidatorInfo: the one block producer, staking nothing, which made every block; no proposals, no kickouts. */
export function validatorsView (chain: DevChain): Record<string, unknown> {
  const made = Number(chain.head.height)
  return {
    current_validators: [{
      account_id: BLOCK_PRODUCER, public_key: producerKey(), is_slashed: false, stake: '0', shards: [0],
      num_produced_blocks: made, num_expected_blocks: made, num_produced_chunks: made, num_expected_chunks: made
    }],
    next_validators: [{ account_id: BLOCK_PRODUCER, public_key: producerKey(), stake: '0', shards: [0] }],
    current_fishermen: [], next_fishermen: [], current_proposals: [], prev_epoch_kickout: [], epoch_start_height: 0, epoch_height: 1
  }
}

export function statusView (chain: DevChain, startedAtMs: number, now: () => number): Record<string, unknown> {
  const head = chain.head
  const first = chain.blocks[0]
  return {
    chain_id: chain.chainId, protocol_version: PROTOCOL_VERSION, latest_protocol_version: PROTOCOL_VERSION,
    rpc_addr: null, validators: [{ account_id: BLOCK_PRODUCER, is_slashed: false }], node_key: null, node_public_key: null, validator_account_id: BLOCK_PRODUCER, validator_public_key: producerKey(),
    genesis_hash: first.hash, uptime_sec: Math.max(0, Math.floor((now() - startedAtMs) / 1000)),
    version: { version: 'nearai-dev-chain', build: 'nearai', rustc_version: '' },
    sync_info: {
      latest_block_hash: head.hash, latest_block_height: Number(head.height), latest_state_root: EPOCH_ID,
      latest_block_time: new Date(head.timestampMs).toISOString(), syncing: false,
      earliest_block_hash: first.hash, earliest_block_height: 0, earliest_block_time: new Date(first.timestampMs).toISOString(),
      epoch_id: EPOCH_ID, epoch_start_height: 0
    }
  }
}
