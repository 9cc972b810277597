/**
 * Which peers to ask for a DAG on shard streams: DHT providers of its root (as bitswap sessions find
 * them); when the DHT names none, connected peers that announce the protocol (identify), which may hold it
 * without having provided it yet (a bootstrap node still pinning). Asking every connected peer when
 * providers are known would cost a refused stream per peer that does not hold the data. Holders that misbehaved or failed lately are skipped
 * for a while (the penalty box), so one bad holder costs one failed stream, not one per shard.
 */
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { SHARD_STREAM_PROTOCOL } from '../../../protocol/shard-stream.ts'

export interface FindHoldersOptions {
  signal: AbortSignal
  /** Most holders returned (default 8). */
  maxHolders?: number
  /** Time the provider lookup may take (default 3 s); connected peers are asked regardless. */
  lookupMs?: number
}

/** Peers to skip until a time (epoch ms), per host. */
const penalties = new WeakMap<object, Map<string, number>>()
export const PENALTY_MS = 10 * 60_000

export function penalise (libp2p: object, peer: PeerId, ms = PENALTY_MS): void {
  let box = penalties.get(libp2p)
  if (box == null) { box = new Map(); penalties.set(libp2p, box) }
  box.set(peer.toString(), Date.now() + ms)
}

export function penalised (libp2p: object, peer: PeerId): boolean {
  const until = penalties.get(libp2p)?.get(peer.toString())
  return until != null && until > Date.now()
}

export async function findHolders (libp2p: Pick<Libp2p, 'peerId' | 'getConnections' | 'peerStore' | 'contentRouting'>, root: CID, opts: FindHoldersOptions): Promise<PeerId[]> {
  const max = opts.maxHolders ?? 8
  const out = new Map<string, PeerId>()
  const add = (peer: PeerId): void => {
    const key = peer.toString()
    if (out.size < max && !peer.equals(libp2p.peerId) && !penalised(libp2p, peer)) out.set(key, peer)
  }
  const lookup = AbortSignal.any([opts.signal, AbortSignal.timeout(opts.lookupMs ?? 3_000)])
  try {
    for await (const provider of libp2p.contentRouting.findProviders(root, { signal: lookup })) {
      if (provider.multiaddrs.length > 0) await libp2p.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs }).catch(() => {})
      add(provider.id)
      if (out.size >= max) break
    }
  } catch {
    opts.signal.throwIfAborted() // a lookup that found nobody, or ran out of time, leaves the connected peers
  }
  if (out.size > 0) return [...out.values()]
  for (const connection of libp2p.getConnections()) {
    if (connection.limits != null || out.has(connection.remotePeer.toString())) continue
    try {
      const peer = await libp2p.peerStore.get(connection.remotePeer)
      if (peer.protocols.includes(SHARD_STREAM_PROTOCOL)) add(connection.remotePeer)
    } catch {
      // not in the peer store yet: identify has not run
    }
  }
  return [...out.values()]
}
