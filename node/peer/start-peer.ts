/**
 * Starts a training peer from its home and configuration: identity from the home folder, blocks and
 * datastore under `<home>/data`, the network as configured.
 */
import { join } from 'node:path'
import type { Logger } from 'pino'
import { loadIdentity } from '../config/home.ts'
import type { NodeConfig } from '../config/schema.ts'
import { PeerNode, type NodeRole } from '../network/peer-node.ts'
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
    dataDir: join(home, 'data'),
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
  })
  logger.info({ peerId: node.peerId, role, multiaddrs: node.multiaddrs, bootstrapReached: node.bootstrapReached }, 'node started')
  return node
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
