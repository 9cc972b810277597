/**
 * The node's configuration: what a file in the node's home, `NEARAI_*` environment variables and
 * command-line flags can set (in that order of precedence, later wins).
 */
import { z } from 'zod'
import { multiaddr } from '@multiformats/multiaddr'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

/**
 * Where a training peer listens unless told otherwise: any free port, so that two peers (or a peer and a
 * one-shot command) on one machine never collide. A bootstrap node, which others must find at a fixed
 * address, listens on BOOTSTRAP_LISTEN instead (`nearai bootstrap start` sets it as its default).
 */
export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/0']
export const BOOTSTRAP_LISTEN = ['/ip4/0.0.0.0/tcp/4010']

/** The problem with a multiaddr string, or undefined when it parses. */
export function multiaddrProblem (text: string): string | undefined {
  if (text.trim() === '') return 'an empty address is not a multiaddr; one looks like /ip4/203.0.113.7/tcp/4010'
  try {
    multiaddr(text)
    return undefined
  } catch (err) {
    return `"${text}" is not a multiaddr (${(err as Error).message.split('\n')[0]}); one looks like /ip4/203.0.113.7/tcp/4010`
  }
}

const LIBP2P_KEY = 0x72
const IDENTITY = 0x00
const SHA2_256 = 0x12

/**
 * Whether `text` is a peer id as libp2p writes them: a base58btc multihash (`12D3KooW...` for Ed25519 keys,
 * `Qm...` for RSA) or a CIDv1 of a libp2p-key. Checked with multiformats alone: every command loads the
 * configuration, and @libp2p/peer-id would add its crypto to each of them.
 */
export function isPeerIdText (text: string): boolean {
  try {
    const digest = text.startsWith('1') || text.startsWith('Q') ? Digest.decode(base58btc.decode(`z${text}`)) : CID.parse(text)
    if ('code' in digest && digest instanceof CID && digest.code !== LIBP2P_KEY) return false
    const hash = digest instanceof CID ? digest.multihash : digest
    // An identity multihash holds the public key itself, a protobuf whose first field is the key type.
    if (hash.code === IDENTITY) return hash.digest.byteLength >= 32 && hash.digest[0] === 0x08
    return hash.code === SHA2_256
  } catch {
    return false
  }
}

/** The problem with a bootstrap address, or undefined: it must be a multiaddr ending in /p2p/<peer id>. */
export function bootstrapAddrProblem (text: string): string | undefined {
  const bad = multiaddrProblem(text)
  if (bad != null) return `${bad}/p2p/<peer id>`
  const last = multiaddr(text).getComponents().at(-1)
  if (last?.name !== 'p2p' || last.value == null) return `"${text}" does not end in /p2p/<peer id>: a bootstrap address names the node's peer id (\`nearai init\` prints it)`
  if (!isPeerIdText(last.value)) return `"${text}" ends in /p2p/${last.value}, which is not a peer id`
  return undefined
}

const Multiaddr = z.string().superRefine((text, ctx) => {
  const problem = multiaddrProblem(text)
  if (problem != null) ctx.addIssue({ code: 'custom', message: problem })
})
const BootstrapAddr = z.string().superRefine((text, ctx) => {
  const problem = bootstrapAddrProblem(text)
  if (problem != null) ctx.addIssue({ code: 'custom', message: problem })
})
import { DEFAULT_RELAY_LIMITS as RELAY } from '../network/relay-limits.ts'
import { MAX_TIMER_MS } from '../time/clock.ts'

/** The longest a Node.js timer waits (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MS / 1000)

export const NodeConfig = z.object({
  network: z.object({
    /** Multiaddrs to listen on (DEFAULT_LISTEN: any free port; a bootstrap node defaults to BOOTSTRAP_LISTEN). */
    listen: z.array(Multiaddr).default(DEFAULT_LISTEN),
    /** Multiaddrs to announce instead of the listen addresses (e.g. a public IP behind port forwarding). */
    announce: z.array(Multiaddr).default([]),
    /** Bootstrap nodes to dial at start: multiaddrs ending in /p2p/<peer-id>. */
    bootstrap: z.array(BootstrapAddr).default([]),
    /** DHT server mode answers others' queries; peers behind NAT should stay clients. */
    dhtServer: z.boolean().default(true),
    /** Reserve a slot on bootstrap relays so that peers behind NAT can be reached through circuit relay v2. */
    relayClient: z.boolean().default(true),
    maxConnections: z.number().int().positive().default(200),
    /** New inbound connections accepted per second from one IP address. */
    inboundConnectionsPerSecond: z.number().int().positive().default(25),
    /** Keep private and loopback addresses in DHT answers (local networks, tests); off for public deployments. */
    allowPrivateAddresses: z.boolean().default(true),
    /** How many peers may share one IP before gossipsub's colocation penalty applies. */
    ipColocationThreshold: z.number().int().positive().default(10)
  }).strict().prefault({}),
  bootstrap: z.object({
    /** Where the operator's /metrics and /healthz are served. */
    metricsHost: z.string().default('127.0.0.1'),
    metricsPort: z.number().int().min(0).max(65535).default(9464),
    /** Circuit relay v2: how many peers may hold a reservation (be reachable through this node) at once. */
    maxRelayReservations: z.number().int().positive().default(RELAY.maxReservations),
    /** How long a relay reservation lasts; peers renew theirs before it expires. At most 24 days (a Node.js timer). */
    relayReservationTtlSeconds: z.number().int().positive().max(MAX_TIMER_SECONDS).default(RELAY.reservationTtlSeconds),
    /** How long one relayed connection may stay open; the relay then closes it and the peers dial again. At most 24 days. */
    relayDurationLimitSeconds: z.number().int().positive().max(MAX_TIMER_SECONDS).default(RELAY.durationLimitSeconds),
    /** Bytes one relayed connection may carry (both directions together) before the relay closes it. */
    relayDataLimitBytes: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).default(RELAY.dataLimitBytes),
    /** Relayed connections one peer may open through this node, and may receive through it, at once. */
    relayMaxCircuitsPerPeer: z.number().int().positive().default(RELAY.maxCircuitsPerPeer),
    /** Public datasets (manifest CIDs) this node fetches and keeps pinned. */
    pin: z.array(z.string()).default([])
  }).strict().prefault({}),
  log: z.object({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    /** `pretty` on a terminal, `json` for log collectors; `auto` picks by whether stdout is a TTY. */
    format: z.enum(['auto', 'pretty', 'json']).default('auto')
  }).strict().prefault({}),
  chain: z.object({
    /** `dev`: the embedded chain under `<home>/chain`; `custom`: any NEAR JSON-RPC (e.g. `nearai chain serve`). */
    network: z.enum(['dev', 'testnet', 'mainnet', 'custom']).default('dev'),
    /** The NEAR account that signs (validators: the account named in the job's validator set). */
    accountId: z.string().min(2).max(64).optional(),
    /** The NearAI contract account; required except on `dev` (nearai.test). */
    contractId: z.string().min(2).max(64).optional(),
    /** JSON-RPC endpoint: required for `custom`, overrides the public RPC for testnet/mainnet. */
    rpcUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** A near-cli credentials file; defaults to ~/.near-credentials/<network>/<accountId>.json. */
    credentialsFile: z.string().min(1).optional(),
    /** Attest the job's published checkpoints when this account is one of its validators. */
    attest: z.boolean().default(true)
  }).strict().prefault({})
}).strict()

export type NodeConfig = z.infer<typeof NodeConfig>
