/** Hosts on 127.0.0.1 for storage tests: a bootstrap DHT server and peers that dial only it. */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { ConnectionGater, PrivateKey } from '@libp2p/interface'
import { createHost, type Host } from '../../node/network/host.ts'
import type { ShardServerInit } from '../../node/storage/shard-stream/server.ts'

export async function startHost (opts: { bootstrap?: Host, dataDir?: string, privateKey?: PrivateKey, connectionGater?: ConnectionGater, shardServer?: ShardServerInit | false } = {}): Promise<Host> {
  const host = await createHost({
    privateKey: opts.privateKey ?? await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    dhtServer: true,
    relayClient: false,
    maxConnections: 100,
    inboundConnectionsPerSecond: 1000,
    dataDir: opts.dataDir,
    connectionGater: opts.connectionGater,
    shardServer: opts.shardServer,
    bootstrap: opts.bootstrap != null ? opts.bootstrap.libp2p.getMultiaddrs().map(String) : []
  })
  if (opts.bootstrap != null) {
    await waitFor('connection to the bootstrap node', () => host.libp2p.getConnections(opts.bootstrap?.libp2p.peerId).length > 0)
    await waitFor('bootstrap node in the DHT routing table', async () => ((host.libp2p.services.dht as any).routingTable.size as number) > 0)
  }
  return host
}

export async function waitFor (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

export async function stopAll (hosts: Array<Host | undefined>): Promise<void> {
  await Promise.all(hosts.map(async h => await h?.stop().catch(() => {})))
}

/** The store under Helia's pinning layer: lets a test plant wrong bytes under a pinned CID. */
export function rawBlockstore (host: Host): { delete: (cid: any) => Promise<void>, put: (cid: any, bytes: Uint8Array) => Promise<unknown> } {
  return (host.helia.blockstore as any).unwrap()
}
