/**
 * The always-on node a bootstrap operator runs: a DHT server and circuit relay v2 server that lets peers find
 * each other and reach peers behind NAT; it does no training. It serves `/metrics` and `/healthz`.
 */
import type { Logger } from 'pino'
import type { NodeConfig } from '../node/config/schema.ts'
import type { PeerNode } from '../node/network/peer-node.ts'
import { startNodeFromHome } from '../node/peer/start-peer.ts'
import { createMetricsRegistry } from './metrics.ts'
import { startOpsServer, type OpsServer } from './http-server.ts'

export interface BootstrapNode {
  node: PeerNode
  ops: OpsServer
  stop: () => Promise<void>
}

export interface StartBootstrapOptions {
  home: string
  config: NodeConfig
  logger: Logger
  /** Extra gauges, e.g. pinned bytes once the storage layer pins public datasets. */
  pinnedBytes?: (node: PeerNode) => Promise<number>
}

export async function startBootstrapNode ({ home, config, logger, pinnedBytes }: StartBootstrapOptions): Promise<BootstrapNode> {
  const node = await startNodeFromHome({ home, config, logger, role: 'bootstrap' })
  const registry = createMetricsRegistry({ node, pinnedBytes: pinnedBytes != null ? async () => await pinnedBytes(node) : undefined })
  const ops = await startOpsServer(node, registry, config.bootstrap.metricsHost, config.bootstrap.metricsPort)
  logger.info({ metrics: `${ops.url}/metrics`, healthz: `${ops.url}/healthz` }, 'bootstrap node serving metrics')
  return {
    node,
    ops,
    stop: async () => {
      await ops.close()
      await node.stop()
    }
  }
}
