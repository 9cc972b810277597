/**
 * @packageDocumentation
 * NearAI on NEAR: the `Ledger` the node uses for jobs and checkpoint anchors, the embedded dev chain
 * (the default when no NEAR network is configured) and its NEAR-compatible JSON-RPC server.
 *
 * @example
 * ```ts
 * const ledger = await openLedger({ network: 'dev', home, accountId: 'alice.test' })
 * await ledger.storageDeposit()
 * await ledger.createJob({ job: 'mnist', specCid, evalCid, validators: ['bob.test'], threshold: 1 })
 * const { url, close } = await serveChain({ home, port: 3030 }) // `nearai chain serve`
 * ```
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { KeyPairString } from 'near-api-js'
import { ensureContractBuilt } from '../../contracts/build.ts'
import { DevChain } from './dev-chain/chain.ts'
import { defaultGenesis, DEFAULT_CONTRACT_ACCOUNT, type GenesisConfig } from './dev-chain/genesis.ts'
import { DevChainLedger } from './dev-ledger.ts'
import { NearLedger } from './near-ledger.ts'
import { credentialsPath, readCredentials } from './credentials.ts'
import { startRpcServer } from './rpc/server.ts'
import type { Ledger } from './ledger.ts'

export type { Ledger, CreateJobInput, AttestInput, Job, RoundAnchors, CheckpointAnchor, Attestation, StorageBalance, RegisterTrainerInput, ReportCheatInput, Trainer, CheatReport, BondWithdrawal, DaoProposal, DaoParams, DaoProposalInput, DaoInitInput, DaoParamsInput, ClaimRewardInput, Reward, RewardClaim } from './ledger.ts'
export { registeredTrainers, requireTrainerRegistration, registerCommand, TrainerNotRegisteredError, type TrainerGate } from './trainers.ts'
export { checkTrainerBond } from './trainer-gate.ts'
export { parseNear, formatNear, YOCTO_PER_NEAR } from './near-amount.ts'
export { LedgerCallError, ContractLedger } from './ledger.ts'
export { DevChain, type Block, type CommittedTransaction } from './dev-chain/chain.ts'
export { defaultGenesis, devSecretKey, devPublicKey, DEFAULT_CONTRACT_ACCOUNT, DEFAULT_DEV_ACCOUNTS, DEFAULT_CHAIN_ID, type GenesisConfig } from './dev-chain/genesis.ts'
export { JournalCorruptError } from './dev-chain/journal.ts'
export { ChainLockedError } from './dev-chain/dir-lock.ts'
export { InvalidTransactionError, ReplayMismatchError } from './dev-chain/errors.ts'
export { DevChainLedger } from './dev-ledger.ts'
export { NearLedger } from './near-ledger.ts'
export { readCredentials, credentialsPath } from './credentials.ts'
export { startRpcServer } from './rpc/server.ts'
export { claimRewards, rewardsOf, roundRewardOf, finalAnchors, ContributionsMismatchError, RewardClaimantError, type ContributionsOf, type RoundReward, type RoundRewardStatus, type RewardsInput, type RewardsLedger } from './rewards.ts'
export { CheckpointAttester, isTransientChainError, ledgerConfigFrom, DEFAULT_MIN_STORAGE_AVAILABLE, type AttestOutcome, type CheckpointAttestationInput, type CheckpointAttesterInit, type RetryOptions } from './auto-attest.ts'

export const NEAR_RPC_URLS: Record<string, string> = {
  testnet: 'https://rpc.testnet.near.org',
  mainnet: 'https://rpc.mainnet.near.org'
}

/** Opens (or creates) the dev chain persisted under `<home>/chain`. */
export async function openDevChain (opts: { home: string, genesis?: GenesisConfig, now?: () => number }): Promise<DevChain> {
  const genesis = opts.genesis ?? defaultGenesis({ contractCode: readFileSync(await ensureContractBuilt()), genesisTimeMs: Date.now() })
  return await DevChain.open({ dir: join(opts.home, 'chain'), genesis, now: opts.now })
}

export type LedgerConfig =
  | { network: 'dev', home: string, accountId: string, secretKey?: KeyPairString, contractId?: string }
  | {
    network: 'testnet' | 'mainnet' | 'custom'
    accountId: string
    contractId: string
    /** Required for 'custom'; defaults to the public RPC for testnet/mainnet. */
    rpcUrl?: string
    /** A near-cli credentials file; defaults to ~/.near-credentials/<network>/<accountId>.json. */
    credentialsFile?: string
    secretKey?: KeyPairString
  }

/** The ledger for a node's configuration: the embedded dev chain, or a NEAR network through its RPC. */
export async function openLedger (config: LedgerConfig): Promise<Ledger> {
  if (config.network === 'dev') {
    const chain = await openDevChain({ home: config.home })
    return new DevChainLedger({ chain, accountId: config.accountId, secretKey: config.secretKey, contractId: config.contractId ?? DEFAULT_CONTRACT_ACCOUNT, ownsChain: true })
  }
  const rpcUrl = config.rpcUrl ?? NEAR_RPC_URLS[config.network]
  if (rpcUrl == null) throw new TypeError(`network ${config.network} needs an rpcUrl`)
  const secretKey = config.secretKey ?? readCredentials(config.credentialsFile ?? credentialsPath(config.network, config.accountId)).secretKey
  return new NearLedger({ rpcUrl, accountId: config.accountId, secretKey, contractId: config.contractId })
}

/** `nearai chain serve`: the dev chain under `<home>/chain` behind a NEAR JSON-RPC server. */
export async function serveChain (opts: { home: string, host?: string, port?: number, now?: () => number }): Promise<{ url: string, chain: DevChain, close: () => Promise<void> }> {
  const chain = await openDevChain({ home: opts.home, now: opts.now })
  const server = await startRpcServer({ chain, host: opts.host ?? '127.0.0.1', port: opts.port ?? 3030 })
  return { url: server.url, chain, close: async () => { await server.close(); chain.close() } }
}
