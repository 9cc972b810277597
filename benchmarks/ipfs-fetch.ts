/**
 * Fetch throughput of a dataset on loopback, from one holder and from three, against a raw TCP copy
 * (node:net) of the same bytes measured in the same run: the production path (`getDataset`: shard streams
 * from the holders, bitswap for anything they do not deliver) and bitswap alone (`shardStreams: false`).
 * Holders and the raw TCP sender run in their own processes, as they would on their own machines; each
 * fetch starts a fresh fetcher with an empty blockstore.
 *
 *   node --import tsx benchmarks/ipfs-fetch.ts [MB]        (or NEARAI_BENCH_MB; default 100)
 *
 * NEARAI_BENCH_SHARD_MB (default 16, the import default) and NEARAI_BENCH_CONCURRENCY (shards fetched at
 * once, default 4) vary the dataset's layout and the fetcher.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { once } from 'node:events'
import { createServer, connect, type AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import { createHost, type Host } from '../node/network/host.ts'
import { addDataset, getDataset, getDatasetManifest } from '../node/storage/datasets.ts'

const self = fileURLToPath(import.meta.url)

async function startHost (bootstrap: string[] = []): Promise<Host> {
  return await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: true, relayClient: false, maxConnections: 100, inboundConnectionsPerSecond: 1000, bootstrap })
}

/** Child process: a holder that imports the file (same bytes, same CIDs) and serves it until stdin closes. */
async function holder (path: string, bootstrap: string): Promise<void> {
  const host = await startHost([bootstrap])
  while (host.libp2p.getConnections().length === 0) await new Promise(resolve => setTimeout(resolve, 50))
  const shardBytes = Number(process.env.NEARAI_BENCH_SHARD_MB ?? 16) * 1024 * 1024
  const { cid } = await addDataset(host.helia, path, { name: 'bench', license: 'CC0-1.0', format: 'text', shardBytes })
  process.stdout.write(JSON.stringify({ cid: cid.toString(), peer: host.peerId }) + '\n')
  process.stdin.resume()
  await once(process.stdin, 'end')
  await host.stop()
  process.exit(0)
}

/** Child process: serves the file's bytes to one raw TCP client. */
async function tcpSender (path: string): Promise<void> {
  const server = createServer(socket => { createReadStream(path, { highWaterMark: 1024 * 1024 }).pipe(socket) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n')
  process.stdin.resume()
  await once(process.stdin, 'end')
  process.exit(0)
}

function child (args: string[]): { proc: ChildProcess, first: Promise<any> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', self, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: proc.stdout! })
  const first = new Promise<any>((resolve, reject) => {
    lines.once('line', line => resolve(JSON.parse(line)))
    proc.once('exit', code => reject(new Error(`child ${args[0]} exited with ${code}`)))
  })
  return { proc, first }
}

async function writeDataset (path: string, bytes: number): Promise<void> {
  // Text lines of random hex: incompressible, and a valid `text` dataset split on line breaks.
  const out = createWriteStream(path)
  for (let written = 0; written < bytes;) {
    const line = randomBytes(Math.min(63, Math.max(1, Math.floor((bytes - written - 1) / 2)))).toString('hex') + '\n'
    written += line.length
    if (!out.write(line)) await once(out, 'drain')
  }
  out.end()
  await once(out, 'close')
}

async function timeIpfsFetch (bootstrap: string, cid: CID, shardStreams: boolean): Promise<{ seconds: number, bytes: number, manifestMs: number }> {
  const fetcher = await startHost([bootstrap])
  try {
    while (fetcher.libp2p.getConnections().length === 0) await new Promise(resolve => setTimeout(resolve, 50))
    const started = performance.now()
    // The manifest first: DHT lookup + first connection to a holder, timed on its own.
    await getDatasetManifest(fetcher.helia, cid, { timeoutMs: 60_000 })
    const manifestMs = performance.now() - started
    const { shards } = await getDataset(fetcher.helia, cid, { timeoutMs: 300_000, concurrency: Number(process.env.NEARAI_BENCH_CONCURRENCY ?? 4), shardStreams })
    const seconds = (performance.now() - started) / 1000
    return { seconds, manifestMs, bytes: shards.reduce((s, x) => s + x.bytes.byteLength, 0) }
  } finally {
    await fetcher.stop()
  }
}

async function main (): Promise<void> {
  const mb = Number(process.argv[2] ?? process.env.NEARAI_BENCH_MB ?? 100)
  const dir = await mkdtemp(join(tmpdir(), 'nearai-bench-'))
  const path = join(dir, 'dataset.txt')
  const children: ChildProcess[] = []
  const boot = await startHost()
  try {
    await writeDataset(path, mb * 1e6)
    const bootAddr = boot.libp2p.getMultiaddrs()[0].toString()
    const rows: Array<{ what: string, seconds: number, bytes: number, manifestMs?: number }> = []

    // Raw TCP copy of the same bytes, one process to another.
    const sender = child(['--tcp-sender', path])
    children.push(sender.proc)
    const { port } = await sender.first
    {
      const started = performance.now()
      const socket = connect(port, '127.0.0.1')
      let bytes = 0
      for await (const chunk of socket) bytes += (chunk as Buffer).byteLength
      rows.push({ what: 'raw TCP (node:net), 1 sender', seconds: (performance.now() - started) / 1000, bytes })
    }

    // One holder.
    const first = child(['--holder', path, bootAddr])
    children.push(first.proc)
    const { cid } = await first.first
    rows.push({ what: 'dataset fetch, 1 holder', ...await timeIpfsFetch(bootAddr, CID.parse(cid), true) })
    rows.push({ what: 'bitswap only, 1 holder', ...await timeIpfsFetch(bootAddr, CID.parse(cid), false) })

    // Three holders of the same dataset (same bytes, same CIDs).
    const more = [child(['--holder', path, bootAddr]), child(['--holder', path, bootAddr])]
    children.push(...more.map(m => m.proc))
    for (const m of more) {
      const got = await m.first
      if (got.cid !== cid) throw new Error('holders disagree on the dataset CID')
    }
    rows.push({ what: 'dataset fetch, 3 holders', ...await timeIpfsFetch(bootAddr, CID.parse(cid), true) })
    rows.push({ what: 'bitswap only, 3 holders', ...await timeIpfsFetch(bootAddr, CID.parse(cid), false) })

    const tcp = rows[0]
    const rate = (r: typeof tcp): number => r.bytes / 1e6 / r.seconds
    console.log(`\nFetching ${mb} MB over 127.0.0.1 (${process.version}, ${process.platform}/${process.arch}, ${availableParallelism()} CPUs), shards of ${process.env.NEARAI_BENCH_SHARD_MB ?? 16} MiB, ${process.env.NEARAI_BENCH_CONCURRENCY ?? 4} fetched at once\n`)
    console.log('| transfer                        |     MB | seconds |   MB/s | vs raw TCP | of which manifest (lookup + connect) |')
    console.log('|---------------------------------|-------:|--------:|-------:|-----------:|-------------------------------------:|')
    for (const r of rows) {
      const manifest = r.manifestMs != null ? `${r.manifestMs.toFixed(0)} ms` : ''
      console.log(`| ${r.what.padEnd(31)} | ${(r.bytes / 1e6).toFixed(1).padStart(6)} | ${r.seconds.toFixed(2).padStart(7)} | ${rate(r).toFixed(1).padStart(6)} | ${(rate(r) / rate(tcp)).toFixed(3).padStart(10)} | ${manifest.padStart(36)} |`)
    }
  } finally {
    for (const c of children) c.stdin?.end()
    await boot.stop()
    await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 })
  }
}

if (process.argv[2] === '--holder') {
  await holder(process.argv[3], process.argv[4])
} else if (process.argv[2] === '--tcp-sender') {
  await tcpSender(process.argv[3])
} else {
  await main()
  process.exit(0)
}
