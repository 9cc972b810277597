/**
 * Starts a training peer from its home and configuration: identity from the home folder, blocks and
 * datastore under `<home>/data`, the network as configured. A listen address whose port is taken fails
 * with one line that says which flag, config field or variable picks another.
 */
import type { Logger } from 'pino'
import { loadIdentity } from '../config/home.ts'
import type { NodeConfig } from '../config/schema.ts'
import { PeerNode, type NodeRole } from '../network/peer-node.ts'
import { ConfigError, envName } from '../config/load.ts'
import { homeDataDir } from './home-store.ts'
import type { RelayServerLimits } from '../network/relay-limits.ts'

export interface StartNodeOptions {
  home: string
  config: NodeConfig
  logger: Logger
  role?: NodeRole
}

export async function startNodeFromHome ({ home, config, logger, role = 'peer' }: StartNodeOptions): Promise<PeerNode> {
  const privateKey = await loadIdentity(home)
  const net = config.network
  const node = await PeerNode.start({
    privateKey,
    role,
    logger,
    dataDir: homeDataDir(home),
    listen: net.listen,
    announce: net.announce,
    bootstrap: net.bootstrap,
    dhtServer: role === 'bootstrap' ? true : net.dhtServer,
    relayClient: role === 'bootstrap' ? false : net.relayClient,
    relayServer: role === 'bootstrap' ? relayLimitsFromConfig(config) : undefined,
    maxConnections: net.maxConnections,
    inboundConnectionsPerSecond: net.inboundConnectionsPerSecond,
    allowPrivateAddresses: net.allowPrivateAddresses,
    ipColocationThreshold: net.ipColocationThreshold
  }).catch((err: unknown) => { throw explainListenError(err, net.listen) })
  logger.info({ peerId: node.peerId, role, multiaddrs: node.multiaddrs, bootstrapReached: node.bootstrapReached }, 'node started')
  return node
}

/** The one-line error for a listen address that cannot be used (a taken port, an address not on this machine). */
export function explainListenError (err: unknown, listen: string[]): unknown {
  const code = errorCode(err)
  if (code !== 'EADDRINUSE' && code !== 'EADDRNOTAVAIL' && code !== 'EACCES') return err
  const addrs = listen.join(', ')
  const fix = `choose another with --listen (config network.listen, env ${envName(['network', 'listen'])})`
  const what = code === 'EADDRINUSE'
    ? `the port is already in use (another node?): ${fix}, e.g. --listen /ip4/0.0.0.0/tcp/0 for any free port`
    : code === 'EADDRNOTAVAIL' ? `that address is not one of this machine's: ${fix}` : `not allowed (ports below 1024 need privileges): ${fix}`
  return new ConfigError(`cannot listen on ${addrs}: ${what}`, { cause: err })
}

function errorCode (err: unknown): string | undefined {
  for (let e = err as { code?: unknown, message?: unknown, cause?: unknown, errors?: unknown } | undefined, depth = 0; e != null && depth < 8; depth++) {
    if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return e.code
    const m = typeof e.message === 'string' ? /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES)\b/.exec(e.message) : null
    if (m != null) return m[1]
    e = (e.cause ?? (Array.isArray(e.errors) ? e.errors[0] : undefined)) as typeof e
  }
  return undefined
}

/** The relay server limits a bootstrap node's `bootstrap.*` configuration sets. */
export function relayLimitsFromConfig (config: NodeConfig): RelayServerLimits {
  const b = config.bootstrap
  return {
    maxReservations: b.maxRelayReservations,
    reservationTtlSeconds: b.relayReservationTtlSeconds,
    durationLimitSeconds: b.relayDurationLimitSeconds,
    dataLimitBytes: b.relayDataLimitBytes,
    maxCircuitsPerPeer: b.relayMaxCircuitsPerPeer
  }
}
