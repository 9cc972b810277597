/**
 * Genesis of the dev chain: well-known accounts with deterministic keys (like Hardhat's), and the
 * NearAI contract at `nearai.test`. Keys derive from the account id, so tests and tools can sign
 * for a dev account without reading files; they guard nothing and must never hold real value.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { ed25519 } from '@noble/curves/ed25519.js'
import { base58btc } from 'multiformats/bases/base58'
import type { KeyPairString } from 'near-api-js'

export const DEFAULT_CONTRACT_ACCOUNT = 'nearai.test'
export const DEFAULT_CHAIN_ID = 'nearai-dev'
export const ONE_NEAR = 10n ** 24n

export interface GenesisAccount {
  accountId: string
  /** yoctoNEAR, as a decimal string so the record is JSON. */
  balance: string
  publicKey: string
}

export interface GenesisConfig {
  chainId: string
  /** Milliseconds since the epoch of the genesis block. */
  genesisTimeMs: number
  accounts: GenesisAccount[]
  contract: { accountId: string, codeBase64: string }
}

/** The deterministic dev key of an account: ed25519 seed = sha256("nearai-dev-key:" + accountId). */
export function devSecretKey (accountId: string): KeyPairString {
  const seed = sha256(Buffer.from(`nearai-dev-key:${accountId}`))
  const pk = ed25519.getPublicKey(seed)
  return `ed25519:${base58btc.baseEncode(Uint8Array.from([...seed, ...pk]))}`
}

export function devPublicKey (accountId: string): string {
  const seed = sha256(Buffer.from(`nearai-dev-key:${accountId}`))
  return `ed25519:${base58btc.baseEncode(ed25519.getPublicKey(seed))}`
}

export const DEFAULT_DEV_ACCOUNTS = ['alice.test', 'bob.test', 'carol.test', 'dave.test', 'eve.test', 'validator-1.test', 'validator-2.test', 'validator-3.test']

export function defaultGenesis (opts: { contractCode: Uint8Array, accounts?: string[], contractAccount?: string, genesisTimeMs?: number, chainId?: string }): GenesisConfig {
  const contractAccount = opts.contractAccount ?? DEFAULT_CONTRACT_ACCOUNT
  const accounts = [...new Set([contractAccount, ...(opts.accounts ?? DEFAULT_DEV_ACCOUNTS)])]
  return {
    chainId: opts.chainId ?? DEFAULT_CHAIN_ID,
    genesisTimeMs: opts.genesisTimeMs ?? 0,
    accounts: accounts.map(accountId => ({ accountId, balance: (10_000n * ONE_NEAR).toString(), publicKey: devPublicKey(accountId) })),
    contract: { accountId: contractAccount, codeBase64: Buffer.from(opts.contractCode).toString('base64') }
  }
}
