/**
 * Runs a one-shot command (add a dataset, fetch a checkpoint...) on a node started from the home: lock the
 * home, start the node (joining the network through the bootstrap list), run, stop cleanly, unlock.
 */
import type { Logger } from 'pino'
import type { NodeConfig } from '../config/schema.ts'
import type { PeerNode } from '../network/peer-node.ts'
import { lockHome } from './home-lock.ts'
import { loadIdentity } from '../config/home.ts'
import { startNodeFromHome } from './start-peer.ts'

export async function withHomeNode<T> (ctx: { home: string, config: NodeConfig, logger: Logger }, purpose: string, fn: (node: PeerNode) => Promise<T>): Promise<T> {
  await loadIdentity(ctx.home) // a clear "run nearai init" error before anything else
  const lock = await lockHome(ctx.home, purpose)
  try {
    // A one-shot node must not take the daemon's port (another home's node may hold it): same hosts, port 0.
    const listen = ctx.config.network.listen.map(addr => addr.replace(/\/tcp\/\d+/, '/tcp/0'))
    const config = { ...ctx.config, network: { ...ctx.config.network, listen } }
    const node = await startNodeFromHome({ ...ctx, config, role: 'peer' })
    try {
      return await fn(node)
    } finally {
      await node.stop()
    }
  } finally {
    await lock.release()
  }
}
