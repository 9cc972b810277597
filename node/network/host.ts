/**
 * The node's one libp2p host, created by Helia so that gossip, the DHT, bitswap and our own protocols
 * share it. Helia gets only what this network needs: bitswap as its block broker and the libp2p DHT as
 * its router (no public gateways, no delegated HTTP routing: they are unreachable here and a private
 * job's content must not leak to them). Blocks and the datastore live on disk under `dataDir`, so pinned
 * content and the DHT's provider records survive a restart. Bitswap also runs over relayed (limited)
 * connections, so a peer behind NAT gets its shards and checkpoints through a relay when nothing else reaches it.
 * Every host also serves the blocks it holds on shard streams (`/nearai/shard/1.0.0`, node/storage/shard-stream/),
 * the fast path of dataset fetches, so training peers and bootstrap pinning nodes alike are holders.
 */
import { join } from 'node:path'
import { mkdir } from 'node:fs/promises'
import { createHeliaLight } from 'helia'
import { withLibp2pLight, type HeliaWithLibp2p } from '@helia/libp2p'
import { withBitswap } from '@helia/bitswap'
import * as dagCbor from '@ipld/dag-cbor'
import { FsBlockstore } from 'blockstore-fs'
import { FsDatastore } from 'datastore-fs'
import { MemoryBlockstore } from 'blockstore-core'
import { MemoryDatastore } from 'datastore-core'
import type { Libp2p } from '@libp2p/interface'
import type { SingleKadDHT } from '@libp2p/kad-dht'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Identify } from '@libp2p/identify'
import type { Ping } from '@libp2p/ping'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { buildLibp2pOptions, type HostNetworkOptions } from './libp2p-options.ts'
import { reuseLimitedConnections } from './limited-connections.ts'
import { startShardServer, type ShardServer, type ShardServerInit } from '../storage/shard-stream/server.ts'

export interface NodeServices extends Record<string, unknown> {
  identify: Identify
  ping: Ping
  dht: SingleKadDHT
  pubsub: GossipSub
  relay?: CircuitRelayService
}

export type NodeLibp2p = Libp2p<NodeServices>
export type NodeHelia = HeliaWithLibp2p<NodeServices>

export interface Host {
  helia: NodeHelia
  libp2p: NodeLibp2p
  peerId: string
  /** The shard-stream server (absent when `shardServer: false`). */
  shardServer?: ShardServer
  stop: () => Promise<void>
}

export interface CreateHostOptions extends HostNetworkOptions {
  /** Folder for blocks and the datastore; in memory when omitted (tests, throwaway nodes). */
  dataDir?: string
  /** Limits of the shard-stream server; `false` serves nothing on it (tests of the bitswap fallback). */
  shardServer?: ShardServerInit | false
}

export async function createHost (opts: CreateHostOptions): Promise<Host> {
  let blockstore, datastore
  if (opts.dataDir != null) {
    await mkdir(opts.dataDir, { recursive: true })
    const fsBlocks = new FsBlockstore(join(opts.dataDir, 'blocks'))
    const fsData = new FsDatastore(join(opts.dataDir, 'datastore'))
    await fsBlocks.open()
    await fsData.open()
    blockstore = fsBlocks
    datastore = fsData
  } else {
    blockstore = new MemoryBlockstore()
    datastore = new MemoryDatastore()
  }
  const libp2pOptions = buildLibp2pOptions(opts)
  const helia = withBitswap(
    withLibp2pLight(createHeliaLight({ blockstore, datastore, codecs: [dagCbor] }), libp2pOptions as any),
    { runOnLimitedConnections: true }
  ) as unknown as NodeHelia
  await helia.start()
  const libp2p = helia.libp2p
  reuseLimitedConnections(libp2p)
  const shards = opts.shardServer === false ? undefined : await startShardServer(helia, libp2p, opts.shardServer)
  return {
    helia,
    libp2p,
    peerId: libp2p.peerId.toString(),
    shardServer: shards,
    stop: async () => {
      await shards?.stop().catch(() => {})
      await helia.stop()
      if (opts.dataDir != null) {
        await (blockstore as FsBlockstore).close?.()
        await (datastore as FsDatastore).close()
      }
    }
  }
}
