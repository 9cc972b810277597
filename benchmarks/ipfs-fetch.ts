/**
 * Fetch throughput of a dataset on loopback, from one holder and from three, against a raw TCP copy
 * (node:net) of the same bytes measured in the same run: the production path (`getDataset`: shard streams
 * from the holders, bitswap for anything they do not deliver) and bitswap alone (`shardStreams: false`).
 * Holders and the raw TCP sender run in their own processes, as they would on their own machines; each
 * fetch starts a fresh fetcher with an empty blockstore, whose DHT has finished its start-up self-query
 * (a just-started node's first DHT query waits for it, about half a second).
 *
 *   node --import tsx benchmarks/ipfs-fetch.ts [MB]        (or NEARAI_BENCH_MB; default 100)
 *
 * NEARAI_BENCH_SHARD_MB (default 16, the import default) and NEARAI_BENCH_CONCURRENCY (shards fetched at
 * once, default 4) vary the dataset's layout and the fetcher; NEARAI_BENCH_REPEATS (default 3) is how many
 * times each fetch runs, each right after a raw TCP copy; the table shows medians, and the baseline is the
 * median of all the raw TCP copies of the run (these machines are shared: load comes and goes).
 * NEARAI_BENCH_LINK_MBPS caps each holder's uplink (and the raw TCP sender's) at that many MB/s with a
 * token-bucket TCP proxy in its process, the address it announces: holders on links slower than the
 * fetcher's CPU, as on a real network, instead of loopback, where one machine's cores are the bound.
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

async function startHost (bootstrap: string[] = [], announce?: string[]): Promise<Host> {
  return await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: true, relayClient: false, maxConnections: 100, inboundConnectionsPerSecond: 1000, bootstrap, announce })
}

/** NEARAI_BENCH_LINK_MBPS: each holder's (and the raw TCP sender's) uplink, in MB/s; unset: loopback as it is. */
const LINK_MBPS = process.env.NEARAI_BENCH_LINK_MBPS != null ? Number(process.env.NEARAI_BENCH_LINK_MBPS) : undefined

/**
 * A capped uplink: a TCP proxy in front of `target()` whose bytes towards the client, over all its
 * connections together, leave at most `mbps` MB/s (a token bucket), as a holder's own upload link would.
 */
async function cappedUplink (mbps: number, target: () => number): Promise<number> {
  let next = 0
  const server = createServer(client => {
    const upstream = connect(target(), '127.0.0.1')
    client.pipe(upstream)
    let written = Promise.resolve()
    upstream.on('data', (chunk: Buffer) => {
      const now = performance.now()
      next = Math.max(now, next) + chunk.byteLength / (mbps * 1e6) * 1000
      const wait = next - now
      if (wait > 1) {
        upstream.pause()
        written = new Promise(resolve => setTimeout(() => { client.write(chunk); upstream.resume(); resolve() }, wait))
      } else {
        client.write(chunk)
      }
    })
    // The sender's end reaches the client after the bytes held back.
    upstream.on('end', () => { void written.then(() => client.end()) })
    const close = (): void => { client.destroy(); upstream.destroy() }
    client.on('error', close).on('close', close)
    upstream.on('error', close)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

/** Child process: a holder that imports the file (same bytes, same CIDs) and serves it until stdin closes. */
async function holder (path: string, bootstrap: string): Promise<void> {
  let host: Host | undefined
  let announce: string[] | undefined
  if (LINK_MBPS != null) {
    // Others reach this holder only through its capped uplink: that is the address it announces.
    const port = await cappedUplink(LINK_MBPS, () => listenPort(host!))
    announce = [`/ip4/127.0.0.1/tcp/${port}`]
  }
  host = await startHost([bootstrap], announce)
  while (host.libp2p.getConnections().length === 0) await new Promise(resolve => setTimeout(resolve, 50))
  const shardBytes = Number(process.env.NEARAI_BENCH_SHARD_MB ?? 16) * 1024 * 1024
  const { cid } = await addDataset(host.helia, path, { name: 'bench', license: 'CC0-1.0', format: 'text', shardBytes })
  process.stdout.write(JSON.stringify({ cid: cid.toString(), peer: host.peerId }) + '\n')
  process.stdin.resume()
  await once(process.stdin, 'end')
  await host.stop()
  process.exit(0)
}

/** The port the host really listens on (its announced address may be a capped uplink in front of it). */
function listenPort (host: Host): number {
  // libp2p's own listening addresses (getMultiaddrs() gives the announced ones)
  const addr = (host.libp2p as any).components.transportManager.getAddrs()[0]
  return Number(addr.toString().split('/')[4])
}

/** Child process: serves the file's bytes to one raw TCP client. */
async function tcpSender (path: string): Promise<void> {
  const server = createServer(socket => { createReadStream(path, { highWaterMark: 1024 * 1024 }).pipe(socket) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const direct = (server.address() as AddressInfo).port
  const port = LINK_MBPS != null ? await cappedUplink(LINK_MBPS, () => direct) : direct
  process.stdout.write(JSON.stringify({ port }) + '\n')
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

async function timeIpfsFetch (bootstrap: string, cid: CID, shardStreams: boolean): Promise<Timing & { manifestMs: number }> {
  const fetcher = await startHost([bootstrap])
  try {
    while (fetcher.libp2p.getConnections().length === 0) await new Promise(resolve => setTimeout(resolve, 50))
    // A node's DHT answers its first query only after its initial self-query (`initialQuerySelfInterval`,
    // 500 ms here): wait for it, as a running peer would have, so the rows compare transfers.
    for await (const _ of fetcher.libp2p.services.dht.getClosestPeers(fetcher.libp2p.peerId.toMultihash().bytes, { signal: AbortSignal.timeout(10_000) })) { /* drain */ }
    const started = performance.now()
    const cpu = process.cpuUsage()
    // The manifest first: DHT lookup + first connection to a holder, timed on its own.
    await getDatasetManifest(fetcher.helia, cid, { timeoutMs: 60_000 })
    const manifestMs = performance.now() - started
    const { shards } = await getDataset(fetcher.helia, cid, { timeoutMs: 300_000, concurrency: Number(process.env.NEARAI_BENCH_CONCURRENCY ?? 4), shardStreams })
    const seconds = (performance.now() - started) / 1000
    return { seconds, manifestMs, cpuSeconds: cpuSeconds(cpu), bytes: shards.reduce((s, x) => s + x.bytes.byteLength, 0) }
  } finally {
    await fetcher.stop()
  }
}

/** `cpuSeconds`: CPU time of this (the receiving) process, which the machine's load does not inflate. */
interface Timing { seconds: number, bytes: number, cpuSeconds: number }
const cpuSeconds = (since: NodeJS.CpuUsage): number => { const d = process.cpuUsage(since); return (d.user + d.system) / 1e6 }
interface Row { what: string, pairs: Array<{ tcp: Timing, fetch: Timing & { manifestMs: number } }> }
const rate = (t: Timing): number => t.bytes / 1e6 / t.seconds
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2 }

async function main (): Promise<void> {
  const mb = Number(process.argv[2] ?? process.env.NEARAI_BENCH_MB ?? 100)
  const dir = await mkdtemp(join(tmpdir(), 'nearai-bench-'))
  const path = join(dir, 'dataset.txt')
  const children: ChildProcess[] = []
  const boot = await startHost()
  try {
    await writeDataset(path, mb * 1e6)
    const bootAddr = boot.libp2p.getMultiaddrs()[0].toString()
    const repeats = Number(process.env.NEARAI_BENCH_REPEATS ?? 3)

    // Raw TCP copy of the same bytes, one process to another: measured again right before every fetch, so
    // each fetch is held against the machine's state of that moment (these machines are shared).
    const sender = child(['--tcp-sender', path])
    children.push(sender.proc)
    const { port } = await sender.first
    const rawCopy = async (): Promise<Timing> => {
      const started = performance.now()
      const cpu = process.cpuUsage()
      const socket = connect(port, '127.0.0.1')
      let bytes = 0
      for await (const chunk of socket) bytes += (chunk as Buffer).byteLength
      return { seconds: (performance.now() - started) / 1000, bytes, cpuSeconds: cpuSeconds(cpu) }
    }
    const rows: Row[] = []
    const measure = async (what: string, cid: CID, shardStreams: boolean): Promise<void> => {
      const pairs: Array<{ tcp: Timing, fetch: Timing & { manifestMs: number } }> = []
      for (let i = 0; i < repeats; i++) pairs.push({ tcp: await rawCopy(), fetch: await timeIpfsFetch(bootAddr, cid, shardStreams) })
      rows.push({ what, pairs })
      process.stderr.write(`${what}: ${pairs.map(p => `${rate(p.fetch).toFixed(1)} MB/s (raw TCP ${rate(p.tcp).toFixed(1)})`).join(', ')}\n`)
    }

    // One holder.
    const first = child(['--holder', path, bootAddr])
    children.push(first.proc)
    const cid = CID.parse((await first.first).cid)
    await measure('dataset fetch, 1 holder', cid, true)
    await measure('bitswap only, 1 holder', cid, false)

    // Three holders of the same dataset (same bytes, same CIDs).
    const more = [child(['--holder', path, bootAddr]), child(['--holder', path, bootAddr])]
    children.push(...more.map(m => m.proc))
    for (const m of more) {
      const got = await m.first
      if (got.cid !== cid.toString()) throw new Error('holders disagree on the dataset CID')
    }
    await measure('dataset fetch, 3 holders', cid, true)
    await measure('bitswap only, 3 holders', cid, false)

    // The baseline: the median of every raw TCP copy of the run (one before each fetch).
    const tcpRate = median(rows.flatMap(r => r.pairs.map(p => rate(p.tcp))))
    const tcpSeconds = median(rows.flatMap(r => r.pairs.map(p => p.tcp.seconds)))
    console.log(`\nFetching ${mb} MB over 127.0.0.1${LINK_MBPS != null ? `, every holder's and the raw TCP sender's uplink capped at ${LINK_MBPS} MB/s` : ''} (${process.version}, ${process.platform}/${process.arch}, ${availableParallelism()} CPUs), shards of ${process.env.NEARAI_BENCH_SHARD_MB ?? 16} MiB, ${process.env.NEARAI_BENCH_CONCURRENCY ?? 4} fetched at once; medians of ${repeats} runs each; raw TCP: median of the ${rows.length * repeats} copies made, one right before each fetch\n`)
    const cpuPerMb = (t: Timing): number => t.cpuSeconds * 1000 / (t.bytes / 1e6)
    const tcpCpu = median(rows.flatMap(r => r.pairs.map(p => cpuPerMb(p.tcp))))
    console.log('| transfer                        |     MB | seconds |   MB/s | vs raw TCP | of which manifest | receiver CPU ms/MB |')
    console.log('|---------------------------------|-------:|--------:|-------:|-----------:|------------------:|-------------------:|')
    console.log(`| ${'raw TCP (node:net), 1 sender'.padEnd(31)} | ${(rows[0].pairs[0].tcp.bytes / 1e6).toFixed(1).padStart(6)} | ${tcpSeconds.toFixed(2).padStart(7)} | ${tcpRate.toFixed(1).padStart(6)} | ${'1.000'.padStart(10)} | ${''.padStart(17)} | ${tcpCpu.toFixed(2).padStart(18)} |`)
    const rowRate = (what: string): number => median(rows.find(r => r.what === what)!.pairs.map(p => rate(p.fetch)))
    for (const r of rows) {
      const seconds = median(r.pairs.map(p => p.fetch.seconds))
      const manifest = `${median(r.pairs.map(p => p.fetch.manifestMs)).toFixed(0)} ms`
      const cpu = median(r.pairs.map(p => cpuPerMb(p.fetch)))
      console.log(`| ${r.what.padEnd(31)} | ${(r.pairs[0].fetch.bytes / 1e6).toFixed(1).padStart(6)} | ${seconds.toFixed(2).padStart(7)} | ${rowRate(r.what).toFixed(1).padStart(6)} | ${(rowRate(r.what) / tcpRate).toFixed(3).padStart(10)} | ${manifest.padStart(17)} | ${cpu.toFixed(2).padStart(18)} |`)
    }
    console.log(`\nshard streams vs bitswap: ${(rowRate('dataset fetch, 1 holder') / rowRate('bitswap only, 1 holder')).toFixed(2)}x from 1 holder, ${(rowRate('dataset fetch, 3 holders') / rowRate('bitswap only, 3 holders')).toFixed(2)}x from 3; 3 holders vs 1: ${(rowRate('dataset fetch, 3 holders') / rowRate('dataset fetch, 1 holder')).toFixed(2)}x (shard streams), ${(rowRate('bitswap only, 3 holders') / rowRate('bitswap only, 1 holder')).toFixed(2)}x (bitswap)`)
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
