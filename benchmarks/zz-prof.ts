// fetcher-only profile: holder in a child process via ipfs-fetch's --holder mode
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import { createHost } from '../node/network/host.ts'
import { getDataset } from '../node/storage/datasets.ts'
const lines = []; for (let n = 0; n < 100e6; n += 81) lines.push(randomBytes(40).toString('hex'))
await writeFile('/tmp/d100.txt', lines.join('\n'))
const start = async (bootstrap: string[] = []) => await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: true, relayClient: false, maxConnections: 100, inboundConnectionsPerSecond: 1000, bootstrap })
const boot = await start()
const addr = boot.libp2p.getMultiaddrs()[0].toString()
const proc = spawn(process.execPath, ['--import', 'tsx', 'benchmarks/ipfs-fetch.ts', '--holder', '/tmp/d100.txt', addr], { stdio: ['pipe', 'pipe', 'inherit'] })
const line: string = await new Promise(r => createInterface({ input: proc.stdout! }).once('line', r))
const { cid } = JSON.parse(line)
for (let i = 0; i < 2; i++) {
  const f = await start([addr])
  while (f.libp2p.getConnections().length === 0) await new Promise(r => setTimeout(r, 50))
  for await (const _ of f.libp2p.services.dht.getClosestPeers(f.libp2p.peerId.toMultihash().bytes)) {}
  const t = performance.now()
  await getDataset(f.helia, CID.parse(cid), { shardStreams: process.env.BS == null })
  console.log('fetch', (performance.now() - t).toFixed(0), 'ms')
  await f.stop()
}
proc.stdin!.end()
await boot.stop()
process.exit(0)
