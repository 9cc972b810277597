/**
 * What a bootstrap node's circuit relay costs its operator, measured on loopback with the relay at its
 * default limits (`bootstrap.*`) in its own process, as it would run on its own machine:
 *
 *   - memory of the relay process per reservation and per open (idle) relayed connection, and its peak while
 *     one relayed connection carries a bulk transfer (after a full GC each time: `--expose-gc`);
 *   - throughput of one stream through the relay against the same two peers' direct connection;
 *   - the bytes a training round's all-reduce moves through the relay: the butterfly all-reduce of the demo's
 *     MLP 784-256-128-10 (fp16 updates, 235,146 parameters) among three peers, one of which is reachable only
 *     through the relay, counted on that peer's relayed connections (both directions, as the relay counts them).
 *
 *   node --import tsx benchmarks/relay-cost.ts       (NEARAI_BENCH_PEERS: reservation clients, default 16;
 *                                                      NEARAI_BENCH_MB: the bulk transfer in MiB, default 32)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os'
import { createInterface, type Interface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { createHost, type Host } from '../node/network/host.ts'
import type { HostNetworkOptions } from '../node/network/libp2p-options.ts'
import { DEFAULT_RELAY_LIMITS } from '../node/network/relay-limits.ts'
import { ButterflyAllReduce } from '../node/allreduce/butterfly.ts'
import { makeGroup } from '../node/allreduce/group.ts'
import { plaintextAggregator, weightedMean } from '../node/allreduce/combine.ts'
import { codecFor } from '../node/compression/index.ts'

const self = fileURLToPath(import.meta.url)
const SINK = '/nearai-bench/sink/1.0.0'
const MLP_PARAMETERS = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10

interface RelayMemory { heapUsed: number, external: number, arrayBuffers: number, rss: number, reservations: number }

/** Child process: the relay (a bootstrap node's libp2p host with the default relay limits), answering `mem`. */
async function relay (): Promise<void> {
  const host = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: true, relayClient: false, relayServer: {}, maxConnections: 1000, inboundConnectionsPerSecond: 10_000 })
  process.stdout.write(JSON.stringify({ addr: host.libp2p.getMultiaddrs()[0].toString() }) + '\n')
  const lines = createInterface({ input: process.stdin })
  for await (const line of lines) {
    if (line === 'mem') {
      for (let i = 0; i < 3; i++) { (globalThis as any).gc(); await new Promise(resolve => setTimeout(resolve, 50)) }
      const m = process.memoryUsage()
      const out: RelayMemory = { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss, reservations: host.libp2p.services.relay?.reservations.size ?? 0 }
      process.stdout.write(JSON.stringify(out) + '\n')
    } else if (line === 'sample') {
      // Without a GC: what the relay holds while it forwards.
      const m = process.memoryUsage()
      process.stdout.write(JSON.stringify({ heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss, reservations: 0 }) + '\n')
    }
  }
  await host.stop()
  process.exit(0)
}

class RelayProcess {
  private readonly lines: Interface
  private readonly queue: Array<(line: string) => void> = []
  constructor (readonly proc: ChildProcess) {
    this.lines = createInterface({ input: proc.stdout! })
    this.lines.on('line', line => this.queue.shift()?.(line))
  }

  async next (): Promise<any> { return JSON.parse(await new Promise<string>(resolve => this.queue.push(resolve))) }
  async ask (what: 'mem' | 'sample'): Promise<RelayMemory> {
    const answer = this.next()
    this.proc.stdin!.write(what + '\n')
    return await answer
  }
}

/** A host connected to the relay at `relayAddr`. */
async function host (relayAddr: string, opts: Partial<HostNetworkOptions> = {}): Promise<Host> {
  const h = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, relayClient: false, maxConnections: 1000, inboundConnectionsPerSecond: 10_000, ...opts })
  await h.libp2p.dial(multiaddr(relayAddr), { signal: AbortSignal.timeout(30_000) })
  return h
}

async function until (what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

const circuitOf = (h: Host): string | undefined => h.libp2p.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit'))
const held = (m: RelayMemory): number => m.heapUsed + m.arrayBuffers
const kib = (bytes: number): string => (bytes / 1024).toFixed(1)

async function sink (libp2p: Libp2p<any>): Promise<void> {
  await libp2p.handle(SINK, async (stream: Stream) => {
    let n = 0
    for await (const part of stream) n += part.byteLength
    stream.send(new TextEncoder().encode(String(n)))
    await stream.close()
  }, { runOnLimitedConnection: true })
}

/** Sends `bytes` over a new SINK stream on `conn`; returns MB/s. */
async function push (conn: Connection, bytes: number, onTick?: () => void): Promise<number> {
  const stream = await conn.newStream(SINK, { runOnLimitedConnection: true })
  const chunk = new Uint8Array(1024 * 1024).fill(1)
  const started = performance.now()
  let ticks = 0
  for (let sent = 0; sent < bytes; sent += chunk.byteLength) {
    if (!stream.send(chunk)) await stream.onDrain()
    if (++ticks % 8 === 0) onTick?.()
  }
  await stream.close()
  let reply = ''
  for await (const part of stream) reply += new TextDecoder().decode(part.subarray())
  const seconds = (performance.now() - started) / 1000
  if (Number(reply) !== bytes) throw new Error(`sink received ${reply} of ${bytes} bytes`)
  return bytes / 1e6 / seconds
}

async function main (): Promise<void> {
  // One dialler opens a relayed connection to each client: at most the relay's circuits per peer.
  const peers = Number(process.env.NEARAI_BENCH_PEERS ?? DEFAULT_RELAY_LIMITS.maxCircuitsPerPeer)
  // Within one relayed connection's data limit (the relay would cut a bigger transfer).
  const mb = Number(process.env.NEARAI_BENCH_MB ?? 32)
  const proc = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', self, '--relay'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const relayProc = new RelayProcess(proc)
  const hosts: Host[] = []
  try {
    const { addr } = await relayProc.next() as { addr: string }
    const rows: string[] = []
    const idle = await relayProc.ask('mem')

    // Reservations: clients that listen only through the relay.
    console.error(`${peers} relay clients reserving...`)
    const clients: Host[] = []
    for (let i = 0; i < peers; i++) clients.push(await host(addr, { listen: [], relayClient: true }))
    hosts.push(...clients)
    await until('every reservation', () => clients.every(c => circuitOf(c) != null))
    const reserved = await relayProc.ask('mem')
    if (reserved.reservations !== peers) throw new Error(`the relay holds ${reserved.reservations} reservations, expected ${peers}`)

    // Idle relayed connections: one dialler opens one to each client.
    console.error(`${peers} relayed connections...`)
    const dialler = await host(addr)
    hosts.push(dialler)
    const circuits: Connection[] = []
    for (const c of clients) circuits.push(await dialler.libp2p.dial(multiaddr(circuitOf(c)!), { signal: AbortSignal.timeout(30_000) }))
    if (!circuits.every(c => c.limits != null)) throw new Error('a connection was not relayed')
    await new Promise(resolve => setTimeout(resolve, 2000)) // identify and DCUtR attempts settle
    const connected = await relayProc.ask('mem')

    // Throughput through the relay against a direct connection between the same two peers.
    console.error(`${mb} MiB through the relay and directly...`)
    const receiver = await host(addr, { relayClient: true })
    const sender = await host(addr)
    hosts.push(receiver, sender)
    await sink(receiver.libp2p)
    await until('the receiver\'s reservation', () => circuitOf(receiver) != null)
    const viaRelay = await sender.libp2p.dial(multiaddr(circuitOf(receiver)!), { signal: AbortSignal.timeout(30_000) })
    const samples: RelayMemory[] = []
    let sampling: Promise<void> = Promise.resolve()
    const relayMBps = await push(viaRelay, mb * 1024 * 1024, () => { sampling = sampling.then(async () => { samples.push(await relayProc.ask('sample')) }) })
    await sampling
    const direct = await sender.libp2p.dial(receiver.libp2p.getMultiaddrs().find(a => !a.toString().includes('/p2p-circuit'))!, { signal: AbortSignal.timeout(30_000) })
    if (direct.limits != null) throw new Error('the direct connection is limited')
    const directMBps = await push(direct, mb * 1024 * 1024)
    const peak = Math.max(...samples.map(held))

    // One all-reduce of the demo MLP among two direct peers and one reachable only through the relay.
    console.error('one all-reduce of the demo MLP with a relay-only peer...')
    const a = await host(addr)
    const b = await host(addr)
    const natted = await host(addr, { listen: [], relayClient: true })
    hosts.push(a, b, natted)
    await until('the NATed peer\'s reservation', () => circuitOf(natted) != null)
    await a.libp2p.dial(multiaddr(circuitOf(natted)!), { signal: AbortSignal.timeout(30_000) })
    await b.libp2p.dial(multiaddr(circuitOf(natted)!), { signal: AbortSignal.timeout(30_000) })
    await a.libp2p.dial(b.libp2p.getMultiaddrs()[0], { signal: AbortSignal.timeout(30_000) })
    await until('the NATed peer\'s relayed connections', () => natted.libp2p.getConnections().filter(c => c.limits != null).length === 2)
    const relayed = natted.libp2p.getConnections().filter(c => c.limits != null)
    const before = relayed.map(c => c.limits!.bytes!)
    const members = [a, b, natted]
    const services = members.map(m => new ButterflyAllReduce({ host: m.libp2p }))
    await Promise.all(services.map(async s => { await s.start() }))
    const group = makeGroup({ job: 'bench', round: 0, members: members.map(m => m.peerId), vectorLength: MLP_PARAMETERS })
    const aggregator = plaintextAggregator(codecFor('fp16'), weightedMean)
    const results = await Promise.all(services.map(async (s, i) => await s.run({ group, vector: new Float32Array(MLP_PARAMETERS).fill(0.001 * (i + 1)), weight: 1, aggregator })))
    if (!results.every(r => r.complete && r.dropped.length === 0)) throw new Error('the all-reduce did not complete with every member')
    const roundBytes = relayed.reduce((sum, c, i) => sum + Number(before[i] - c.limits!.bytes!), 0)
    const nattedResult = results[2]
    await Promise.all(services.map(async s => { await s.stop() }))

    const perReservation = (held(reserved) - held(idle)) / peers
    const perCircuit = (held(connected) - held(reserved)) / peers
    rows.push(`| relay process, idle (heap + array buffers, after GC)    | ${kib(held(idle)).padStart(10)} KiB |`)
    rows.push(`| per reservation (${peers} clients)                          | ${kib(perReservation).padStart(10)} KiB |`)
    rows.push(`| per open, idle relayed connection (${peers})                | ${kib(perCircuit).padStart(10)} KiB |`)
    rows.push(`| peak while one relayed connection carries ${mb} MiB, over idle with ${peers} reservations and ${peers} connections | ${kib(peak - held(connected)).padStart(10)} KiB |`)
    rows.push(`| RSS: idle / ${peers} reservations / + ${peers} connections   | ${(idle.rss / 2 ** 20).toFixed(1)} / ${(reserved.rss / 2 ** 20).toFixed(1)} / ${(connected.rss / 2 ** 20).toFixed(1)} MiB |`)

    console.log(`\nCircuit relay v2 at the default limits (data ${DEFAULT_RELAY_LIMITS.dataLimitBytes} bytes and ${DEFAULT_RELAY_LIMITS.durationLimitSeconds} s per relayed connection, ${DEFAULT_RELAY_LIMITS.maxReservations} reservations, ${DEFAULT_RELAY_LIMITS.maxCircuitsPerPeer} circuits per peer) on 127.0.0.1`)
    console.log(`${process.version}, ${process.platform}/${process.arch}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, load average ${loadavg().map(l => l.toFixed(1)).join(' ')} at the end\n`)
    console.log('| relay memory | |')
    console.log('|---|---:|')
    for (const r of rows) console.log(r)
    console.log('\n| one stream, sender to receiver | MB/s |')
    console.log('|---|---:|')
    console.log(`| direct connection (TCP + Noise + Yamux) | ${directMBps.toFixed(1)} |`)
    console.log(`| relayed connection (through the relay process) | ${relayMBps.toFixed(1)} |`)
    console.log(`| relayed / direct | ${(relayMBps / directMBps).toFixed(2)} |`)
    console.log(`\nOne all-reduce of the demo MLP (${MLP_PARAMETERS} parameters, fp16: ${(MLP_PARAMETERS * 2 / 1e6).toFixed(2)} MB per update), 3 peers, one reachable only through the relay:`)
    console.log(`  all-reduce payload of the relay-only peer: sent ${(nattedResult.bytesSent / 1e6).toFixed(3)} MB, received ${(nattedResult.bytesReceived / 1e6).toFixed(3)} MB`)
    console.log(`  bytes on its 2 relayed connections, both directions, as the relay counts them: ${(roundBytes / 1e6).toFixed(3)} MB per round`)
    console.log(`  relay traffic (each counted byte enters and leaves the relay): ${(2 * roundBytes / 1e6).toFixed(3)} MB per round`)
    console.log(`  rounds one relayed connection carries before its data limit (${DEFAULT_RELAY_LIMITS.dataLimitBytes} bytes), at half of the per-round bytes each: ${Math.floor(DEFAULT_RELAY_LIMITS.dataLimitBytes / (roundBytes / 2))}`)
  } finally {
    await Promise.all(hosts.map(async h => { try { await h.stop() } catch {} }))
    proc.stdin!.end()
    await once(proc, 'exit').catch(() => {})
  }
}

if (process.argv[2] === '--relay') {
  await relay()
} else {
  await main()
  process.exit(0)
}
