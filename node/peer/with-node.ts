/**
 * Runs a one-shot command (add a dataset, fetch a checkpoint...) on the node's home: lock the home, run,
 * release everything, unlock. The command first works on the home's own store with no network
 * (`HomeSession.local`); a libp2p node joins the network through the bootstrap list only when the command
 * asks for it (`HomeSession.online`), typically because the content it needs is not in the home
 * (`localFirst`). Listing, showing, unpinning, importing a CAR never start one.
 */
import type { Helia } from '@helia/interface'
import type { Logger } from 'pino'
import type { NodeConfig } from '../config/schema.ts'
import type { PeerNode } from '../network/peer-node.ts'
import { lockHome } from './home-lock.ts'
import { isNotLocal, openHomeStore, type HomeStore } from './home-store.ts'
import { requireInitialisedHome } from '../config/home-layout.ts'

export interface HomeContext { home: string, config: NodeConfig, logger: Logger }

/** Content is not in the home, and this node has no bootstrap node to ask for it. */
export class NoNetworkError extends Error {
  override name = 'NoNetworkError'
}

export interface HomeSession {
  /** The home's store with no network (opened on first use). */
  local: () => Promise<Helia>
  /** Starts (once) a node on the network; the local store is closed first: one writer per blockstore. */
  online: (why: string) => Promise<PeerNode>
  /** The network node's Helia when one was started, else the local store. */
  helia: () => Promise<Helia>
  /** Whether a network node was started. */
  readonly isOnline: boolean
}

/** Where a `localFirst` attempt runs: the home's store (`offline`) or the network node. */
export interface Attempt { helia: Helia, offline: boolean, node?: PeerNode }

export async function withHomeSession<T> (ctx: HomeContext, purpose: string, fn: (session: HomeSession) => Promise<T>): Promise<T> {
  await requireInitialisedHome(ctx.home) // a clear "run nearai init" error before anything else
  const lock = await lockHome(ctx.home, purpose)
  let store: HomeStore | undefined
  let node: PeerNode | undefined
  const session: HomeSession = {
    local: async () => {
      if (node != null) throw new Error('the local store is closed once the node is online')
      store ??= await openHomeStore(ctx.home)
      return store.helia
    },
    online: async (why) => {
      if (node != null) return node
      if (ctx.config.network.bootstrap.length === 0) {
        throw new NoNetworkError(`${why}, and no bootstrap node is configured to find it on the network: ` +
          'add one with network.bootstrap in the home\'s config.json or NEARAI_NETWORK_BOOTSTRAP')
      }
      if (store != null) { const s = store; store = undefined; await s.close() }
      ctx.logger.info({ why }, 'joining the network')
      node = await startOneShotNode(ctx)
      return node
    },
    helia: async () => node?.helia ?? await session.local(),
    get isOnline () { return node != null }
  }
  try {
    return await fn(session)
  } finally {
    try {
      await store?.close()
      await node?.stop()
    } finally {
      await lock.release()
    }
  }
}

/**
 * Runs `attempt` on the home's store first; when it fails because something is not in the home, starts
 * the network node and runs it again there. Errors about the content itself (wrong hash, not a dataset)
 * and bad arguments are final and come straight back.
 */
export async function localFirst<T> (session: HomeSession, what: string, attempt: (where: Attempt) => Promise<T>): Promise<T> {
  if (!session.isOnline) {
    try {
      return await attempt({ helia: await session.local(), offline: true })
    } catch (err) {
      if (!isNotLocal(err)) throw err
    }
  }
  const node = await session.online(`${what} is not in this home`)
  return await attempt({ helia: node.helia, offline: false, node })
}

/** The old shape: a network node for the whole command. */
export async function withHomeNode<T> (ctx: HomeContext, purpose: string, fn: (node: PeerNode) => Promise<T>): Promise<T> {
  await requireInitialisedHome(ctx.home)
  const lock = await lockHome(ctx.home, purpose)
  try {
    const node = await startOneShotNode(ctx)
    try {
      return await fn(node)
    } finally {
      await node.stop()
    }
  } finally {
    await lock.release()
  }
}

async function startOneShotNode (ctx: HomeContext): Promise<PeerNode> {
  const { startNodeFromHome } = await import('./start-peer.ts')
  // A one-shot node must not take the daemon's port (another home's node may hold it): same hosts, port 0.
  const listen = ctx.config.network.listen.map(addr => addr.replace(/\/tcp\/\d+/, '/tcp/0'))
  const config = { ...ctx.config, network: { ...ctx.config.network, listen } }
  return await startNodeFromHome({ ...ctx, config, role: 'peer' })
}
