/**
 * Topic rendezvous through the DHT. Gossipsub only meshes peers that are connected, and bootstrap nodes do
 * not relay job topics, so peers of one job find each other by providing a well-known CID derived from the
 * topic name and dialling the other providers of it.
 */
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { Logger } from 'pino'
import type { NodeLibp2p } from './host.ts'

export async function rendezvousCid (topic: string): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(`nearai-rendezvous:${topic}`)))
}

export interface RendezvousResult {
  found: number
  dialled: number
}

/** Announces this node under `topic` and dials up to `maxPeers` other peers that did the same. */
export async function joinRendezvous (libp2p: NodeLibp2p, topic: string, log: Logger, { maxPeers = 16, signal }: { maxPeers?: number, signal?: AbortSignal } = {}): Promise<RendezvousResult> {
  const cid = await rendezvousCid(topic)
  await libp2p.contentRouting.provide(cid, { signal })
  let found = 0
  let dialled = 0
  const self = libp2p.peerId.toString()
  for await (const provider of libp2p.contentRouting.findProviders(cid, { signal })) {
    if (provider.id.toString() === self) continue
    found++
    if (libp2p.getConnections(provider.id).length > 0) continue
    try {
      if (provider.multiaddrs.length > 0) await libp2p.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs })
      await libp2p.dial(provider.id, { signal })
      dialled++
    } catch (err) {
      log.debug({ peer: provider.id.toString(), err: (err as Error).message }, 'rendezvous dial failed')
    }
    if (found >= maxPeers) break
  }
  return { found, dialled }
}
