/**
 * Butterfly all-reduce on loopback: time, bytes each peer sent, and the ratio to the bandwidth bound.
 *
 *   node --import tsx benchmarks/allreduce.ts                          # 16,64,256 MB × 2,4,8 peers, child processes
 *   node --import tsx benchmarks/allreduce.ts --sizes 16 --peers 2,4 --H 50 --probe-mb 64
 *   node --import tsx benchmarks/allreduce.ts --in-process             # every peer in this process
 *   (or NEARAI_BENCH_SIZES, NEARAI_BENCH_PEERS, NEARAI_BENCH_H, NEARAI_BENCH_PROBE_MB, NEARAI_BENCH_IN_PROCESS=1)
 *
 * By default every peer is a child process with its own libp2p node (TCP + Noise + Yamux on 127.0.0.1):
 * in one process all peers would share one JavaScript thread, and the encryption of every link would be
 * serialised there. The bandwidth bound of a run is 2(N-1)/N × size / (throughput of one copy), where the
 * one-copy throughput is measured in the same run between two of the same processes, once over one libp2p
 * stream of the same stack and once over a raw node:net socket. Note: the machine's cores are shared by
 * all peers; with more peers than cores, the ratio measures the CPU as much as the protocol.
 *
 * The communication reduction factor compares what a peer sends per round (one all-reduce of the
 * pseudo-gradient) with what per-step gradient exchange would send for the same samples: H all-reduces
 * of the same size (one per inner step).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createServer, connect, type Server, type AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { ButterflyAllReduce } from '../node/allreduce/butterfly.ts'
import { makeGroup } from '../node/allreduce/group.ts'
import { plaintextAggregator } from '../node/allreduce/combine.ts'
import type { VectorCodec } from '../node/compression/codec.ts'
import { InvalidMessageError } from '../protocol/errors.ts'

const PROBE_PROTOCOL = '/nearai/bench/copy/1.0.0'

/** Diagnostics go to stderr, the table to stdout. */
function warn (...parts: unknown[]): void {
  process.stderr.write(parts.map(String).join(' ') + '\n')
}
const MB = 1024 * 1024
const CHUNK = MB

/** The fp32 bytes as they are (no copy); node/compression's codecs plug in the same way. */
const rawCodec: VectorCodec = {
  id: 'none',
  encode: (v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength),
  decode: (b) => {
    if (b.byteLength % 4 !== 0) throw new InvalidMessageError('not whole floats')
    return b.byteOffset % 4 === 0 ? new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) : new Float32Array(b.slice().buffer)
  }
}

interface RunReport { ms: number, bytesSent: number, bytesReceived: number, checksum: number, dropped: number }

/** One peer of the benchmark: a libp2p node with the all-reduce, a copy-probe protocol and a raw TCP sink. */
class BenchPeer {
  node!: Libp2p
  service!: ButterflyAllReduce
  server!: Server
  private vector: Float32Array | null = null

  async init (): Promise<{ peerId: string, addr: string, tcpPort: number }> {
    this.node = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // Every peer is on 127.0.0.1: libp2p's default of 5 inbound connections a second per host would refuse the mesh.
      connectionManager: { inboundConnectionThreshold: 1000, maxConnections: 1000 },
      // With 8 peer processes on a 2-core machine a process can be descheduled for seconds; libp2p's
      // connection monitor would then abort whole connections on a late ping (NEARAI_BENCH_PING_ABORT=1 keeps it).
      connectionMonitor: { abortConnectionOnPingFailure: process.env.NEARAI_BENCH_PING_ABORT === '1' },
      services: { identify: identify(), ping: ping() }
    })
    const debug = process.env.NEARAI_BENCH_DEBUG === '1'
    const me = this.node.peerId.toString().slice(-6)
    // The benchmark measures throughput, not failure detection: with more peer processes than cores, a peer
    // can be descheduled for seconds, so the stall floor is raised (NEARAI_BENCH_FLOOR_MS).
    const floorMs = Number(process.env.NEARAI_BENCH_FLOOR_MS ?? 60_000)
    this.service = new ButterflyAllReduce({ host: this.node, logger: debug ? { debug: (o, m) => { warn(new Date().toISOString().slice(14, 23), me, m, JSON.stringify(o)) } } : undefined }, { timeouts: { floorMs } })
    await this.service.start()
    // Copy probe: count the bytes, answer one byte when all have arrived.
    await this.node.handle(PROBE_PROTOCOL, (stream) => {
      void (async () => {
        let expected = -1
        let got = 0
        for await (const chunk of stream) {
          const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
          if (expected < 0) expected = new DataView(bytes.buffer, bytes.byteOffset).getFloat64(0)
          got += bytes.byteLength
          if (got >= expected + 8) break
        }
        stream.send(new Uint8Array([1]))
        await stream.close()
      })()
    })
    this.server = createServer(socket => {
      let expected = -1
      let got = 0
      socket.on('data', (bytes: Buffer) => {
        if (expected < 0) expected = bytes.readDoubleBE(0)
        got += bytes.byteLength
        if (got >= expected + 8) socket.end(Buffer.from([1]))
      })
    })
    await new Promise<void>(resolve => this.server.listen(0, '127.0.0.1', resolve))
    return { peerId: this.node.peerId.toString(), addr: this.node.getMultiaddrs()[0].toString(), tcpPort: (this.server.address() as AddressInfo).port }
  }

  /** Dials the peers after this one in the list (two peers dialling each other at once can fail the handshake), then waits for the full mesh. */
  async connect (addrs: string[]): Promise<void> {
    const mine = addrs.indexOf(this.node.getMultiaddrs()[0].toString())
    for (const a of addrs.slice(mine + 1)) await this.node.dial(multiaddr(a))
    const others = addrs.length - 1
    const deadline = Date.now() + 30_000
    while (new Set(this.node.getConnections().map(c => c.remotePeer.toString())).size < others) {
      if (Date.now() > deadline) throw new Error('mesh not complete')
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  }

  prepare (elements: number, seed: number): void {
    const v = new Float32Array(elements)
    let x = (seed * 2654435761) >>> 0 || 1
    for (let i = 0; i < elements; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; v[i] = x / 0x100000000 - 0.5 }
    this.vector = v
  }

  async allReduce (job: string, round: number, members: string[], weight: number): Promise<RunReport> {
    const vector = this.vector
    if (vector == null) throw new Error('not prepared')
    const group = makeGroup({ job, round, members, vectorLength: vector.length })
    const r = await this.service.run({ group, vector, weight, aggregator: plaintextAggregator(rawCodec) })
    this.vector = null
    // A cheap fingerprint of the result, to check every peer got the same bits.
    const words = new Uint32Array(r.vector.buffer, r.vector.byteOffset, r.vector.length)
    let h = 0
    for (let i = 0; i < words.length; i++) h = (Math.imul(h, 31) + words[i]) | 0
    return { ms: r.durationMs, bytesSent: r.bytesSent, bytesReceived: r.bytesReceived, checksum: h, dropped: r.dropped.length }
  }

  /** Time to move `bytes` to another peer over one libp2p stream, until it acknowledges the last byte. */
  async probeLibp2p (peerId: string, addr: string, bytes: number): Promise<number> {
    await this.node.dial(multiaddr(addr))
    const stream = await this.node.dialProtocol(peerIdFromString(peerId), PROBE_PROTOCOL)
    const chunk = new Uint8Array(CHUNK).fill(7)
    const head = new Uint8Array(8)
    new DataView(head.buffer).setFloat64(0, bytes)
    const started = performance.now()
    const ack = (async () => { for await (const _ of stream) return })()
    if (!stream.send(head)) await stream.onDrain()
    for (let sent = 0; sent < bytes; sent += CHUNK) {
      if (!stream.send(chunk.subarray(0, Math.min(CHUNK, bytes - sent)))) await stream.onDrain()
    }
    await ack
    const ms = performance.now() - started
    await stream.close().catch(() => {})
    return ms
  }

  /** The same over a raw TCP socket on 127.0.0.1. */
  async probeTcp (port: number, bytes: number): Promise<number> {
    const socket = connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    const chunk = Buffer.alloc(CHUNK, 7)
    const head = Buffer.alloc(8)
    head.writeDoubleBE(bytes, 0)
    const started = performance.now()
    const ack = new Promise<void>(resolve => socket.once('data', () => { resolve() }))
    socket.write(head)
    for (let sent = 0; sent < bytes; sent += CHUNK) {
      if (!socket.write(chunk.subarray(0, Math.min(CHUNK, bytes - sent)))) await new Promise(resolve => socket.once('drain', resolve))
    }
    await ack
    const ms = performance.now() - started
    socket.destroy()
    return ms
  }

  async stop (): Promise<void> {
    await this.service.stop()
    await this.node.stop()
    this.server.close()
  }
}

// ------------------------------------------------------------------------------------------------
// Peers in child processes, driven over IPC; or in this process.

type Call = { id: number, method: keyof BenchPeer, args: unknown[] }

interface PeerHandle {
  call: <T>(method: keyof BenchPeer, ...args: unknown[]) => Promise<T>
  close: () => Promise<void>
}

function inProcessPeer (): PeerHandle {
  const peer = new BenchPeer()
  return {
    call: async <T>(method: keyof BenchPeer, ...args: unknown[]) => await (peer[method] as (...a: unknown[]) => Promise<T>).apply(peer, args),
    close: async () => { await peer.stop() }
  }
}

function childPeer (): PeerHandle {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--worker'], { execArgv: ['--import', 'tsx', '--max-old-space-size=4096'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let next = 0
  const pending = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>()
  child.on('message', (m: { id: number, ok: boolean, value?: unknown, error?: string }) => {
    const p = pending.get(m.id)
    pending.delete(m.id)
    if (m.ok) p?.resolve(m.value)
    else p?.reject(new Error(m.error))
  })
  child.on('exit', (code) => { for (const p of pending.values()) p.reject(new Error(`peer process exited with ${code}`)) })
  return {
    call: async <T>(method: keyof BenchPeer, ...args: unknown[]) => await new Promise<T>((resolve, reject) => {
      const id = next++
      pending.set(id, { resolve, reject })
      child.send({ id, method, args } satisfies Call)
    }),
    close: async () => {
      await new Promise<void>(resolve => {
        const id = next++
        pending.set(id, { resolve: () => { child.kill(); resolve() }, reject: () => { resolve() } })
        child.send({ id, method: 'stop', args: [] } satisfies Call)
      })
    }
  }
}

function runWorker (): void {
  const peer = new BenchPeer()
  process.on('disconnect', () => { process.exit(1) })
  process.on('message', (m: Call) => {
    void (async () => {
      try {
        const value = await (peer[m.method] as (...a: unknown[]) => Promise<unknown>).apply(peer, m.args)
        process.send?.({ id: m.id, ok: true, value })
        if (m.method === 'stop') process.exit(0)
      } catch (err) {
        process.send?.({ id: m.id, ok: false, error: (err as Error).stack ?? String(err) })
      }
    })()
  })
}

// ------------------------------------------------------------------------------------------------

interface Row {
  sizeMB: number
  peers: number
  ms: number
  sentMB: number
  libp2pBoundMs: number
  tcpBoundMs: number
  identical: boolean
  dropped: number
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string' },
      peers: { type: 'string' },
      H: { type: 'string' },
      'probe-mb': { type: 'string' },
      'in-process': { type: 'boolean' }
    }
  })
  const list = (v: string | undefined, env: string, def: string): number[] => (v ?? process.env[env] ?? def).split(',').map(Number).filter(n => n > 0)
  const sizes = list(values.sizes, 'NEARAI_BENCH_SIZES', '16,64,256')
  const peerCounts = list(values.peers, 'NEARAI_BENCH_PEERS', '2,4,8')
  const H = Number(values.H ?? process.env.NEARAI_BENCH_H ?? 50)
  const probeMB = Number(values['probe-mb'] ?? process.env.NEARAI_BENCH_PROBE_MB ?? 64)
  const inProcess = values['in-process'] === true || process.env.NEARAI_BENCH_IN_PROCESS === '1'
  const maxPeers = Math.max(...peerCounts)

  console.log(`all-reduce benchmark: sizes ${sizes.join(',')} MB, peers ${peerCounts.join(',')}, H=${H}, ${inProcess ? 'all peers in one process' : 'one child process per peer'}, copy probe ${probeMB} MB`)
  const handles = Array.from({ length: maxPeers }, () => inProcess ? inProcessPeer() : childPeer())
  const infos = await Promise.all(handles.map(async h => await h.call<{ peerId: string, addr: string, tcpPort: number }>('init')))
  await Promise.all(handles.map(async h => { await h.call('connect', infos.map(i => i.addr)) }))

  // One copy, measured in this run, on the same stack: one libp2p stream, and one raw TCP socket.
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const probeBytes = probeMB * MB
  const libp2pMs: number[] = []
  const tcpMs: number[] = []
  const retry = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try { return await fn() } catch (err) { if (attempt >= 5) throw err; warn('probe failed, retrying:', (err as Error).message.split('\n')[0]); await new Promise(resolve => setTimeout(resolve, 500)) }
    }
  }
  for (let i = 0; i < 3; i++) {
    libp2pMs.push(await retry(async () => await handles[0].call<number>('probeLibp2p', infos[1].peerId, infos[1].addr, probeBytes)))
    tcpMs.push(await retry(async () => await handles[0].call<number>('probeTcp', infos[1].tcpPort, probeBytes)))
  }
  const libp2pBps = probeBytes / (median(libp2pMs) / 1000)
  const tcpBps = probeBytes / (median(tcpMs) / 1000)
  console.log(`one copy of ${probeMB} MB: libp2p stream (TCP+Noise+Yamux) ${(libp2pBps / MB).toFixed(0)} MB/s, raw TCP ${(tcpBps / MB).toFixed(0)} MB/s (median of 3)\n`)

  const rows: Row[] = []
  let round = 0
  // Warm-up: the first round in a process runs cold code (JIT) and opens the streams' first connections.
  for (const n of peerCounts) {
    const members = infos.slice(0, n).map(i => i.peerId)
    await Promise.all(handles.slice(0, n).map(async (p, i) => { await p.call('prepare', 256 * 1024, i + 1) }))
    await Promise.all(handles.slice(0, n).map(async (p, i) => await p.call<RunReport>('allReduce', 'bench', round, members, i + 1)))
    round++
  }
  for (const sizeMB of sizes) {
    for (const n of peerCounts) {
      const peers = handles.slice(0, n)
      const members = infos.slice(0, n).map(i => i.peerId)
      const elements = Math.floor(sizeMB * MB / 4)
      await Promise.all(peers.map(async (p, i) => { await p.call('prepare', elements, round * 100 + i + 1) }))
      if (process.env.NEARAI_BENCH_DEBUG === '1') warn(new Date().toISOString().slice(14, 23), 'start', sizeMB, n)
      const reports = await Promise.all(peers.map(async (p, i) => await p.call<RunReport>('allReduce', 'bench', round, members, i + 1)))
      round++
      const bytes = sizeMB * MB
      const factor = 2 * (n - 1) / n
      rows.push({
        sizeMB,
        peers: n,
        ms: Math.max(...reports.map(r => r.ms)),
        sentMB: Math.max(...reports.map(r => r.bytesSent)) / MB,
        libp2pBoundMs: factor * bytes / libp2pBps * 1000,
        tcpBoundMs: factor * bytes / tcpBps * 1000,
        identical: reports.every(r => r.checksum === reports[0].checksum),
        dropped: Math.max(...reports.map(r => r.dropped))
      })
      const r = rows[rows.length - 1]
      console.log(`  ${sizeMB} MB × ${n} peers: ${r.ms.toFixed(0)} ms`)
    }
  }

  const pad = (s: string | number, w: number): string => String(s).padStart(w)
  console.log('\n' + ['size MB', 'peers', 'time ms', 'sent/peer MB', '2(N-1)/N·S', 'bound libp2p ms', 'x libp2p', 'bound TCP ms', 'x TCP', 'per-step MB', 'reduction', 'same bits', 'dropped'].map((h, i) => pad(h, [8, 6, 9, 13, 11, 16, 9, 13, 7, 12, 10, 10, 8][i])).join(''))
  for (const r of rows) {
    const ideal = 2 * (r.peers - 1) / r.peers * r.sizeMB
    const perStep = H * ideal
    console.log([
      pad(r.sizeMB, 8), pad(r.peers, 6), pad(r.ms.toFixed(0), 9), pad(r.sentMB.toFixed(1), 13), pad(ideal.toFixed(1), 11),
      pad(r.libp2pBoundMs.toFixed(0), 16), pad((r.ms / r.libp2pBoundMs).toFixed(2), 9), pad(r.tcpBoundMs.toFixed(0), 13), pad((r.ms / r.tcpBoundMs).toFixed(2), 7),
      pad(perStep.toFixed(0), 12), pad((perStep / r.sentMB).toFixed(1) + 'x', 10), pad(r.identical ? 'yes' : 'NO', 10), pad(r.dropped, 8)
    ].join(''))
  }
  console.log(`\nx libp2p / x TCP: time over the bandwidth bound 2(N-1)/N·S / (one-copy throughput). per-step MB: what a peer would send exchanging gradients every inner step (H=${H} all-reduces of S); reduction: per-step MB / sent per round.`)
  await Promise.all(handles.map(async h => { await h.close() }))
  process.exit(0)
}

if (process.argv.includes('--worker')) runWorker()
else await main()
