/**
 * The node's configuration: what a file in the node's home, `NEARAI_*` environment variables and
 * command-line flags can set (in that order of precedence, later wins).
 */
import { z } from 'zod'
import { DEFAULT_RELAY_LIMITS as RELAY } from '../network/relay-limits.ts'

/** The longest a Node.js timer waits (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000)

export const NodeConfig = z.object({
  network: z.object({
    /** Multiaddrs to listen on. */
    listen: z.array(z.string()).default(['/ip4/0.0.0.0/tcp/4010']),
    /** Multiaddrs to announce instead of the listen addresses (e.g. a public IP behind port forwarding). */
    announce: z.array(z.string()).default([]),
    /** Bootstrap nodes to dial at start: multiaddrs ending in /p2p/<peer-id>. */
    bootstrap: z.array(z.string()).default([]),
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
