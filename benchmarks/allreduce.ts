/**
 * Butterfly all-reduce on loopback, through the production path: each peer is a `createHost` node (the
 * libp2p options every NearAI peer runs: node/network/libp2p-options.ts), its update goes through the job's
 * encode step (updateEncoder(codec): per-part encoding with error feedback) and the all-reduce reduces the
 * encoded parts with `plaintextAggregator(codec)`, as AllReduceAverager does.
 *
 *   node --import tsx benchmarks/allreduce.ts --sizes 16,64 --peers 2,4,8 --codec fp16
 *   node --import tsx benchmarks/allreduce.ts --sizes 16 --peers 2 --codec int8 --H 50 --probe-mb 32 --reps 3
 *   node --import tsx benchmarks/allreduce.ts --in-process             # every peer in this process
 *   (or NEARAI_BENCH_SIZES, NEARAI_BENCH_PEERS, NEARAI_BENCH_CODEC, NEARAI_BENCH_H, NEARAI_BENCH_PROBE_MB, NEARAI_BENCH_REPS,
 *    NEARAI_BENCH_IN_PROCESS=1; NEARAI_BENCH_PROF=<dir> writes a CPU profile of each peer process there,
 *    NEARAI_BENCH_NODE_FLAGS='--trace-gc' passes flags to the peer processes)
 *
 * Bytes are counted on the wire: every TCP socket a peer process opens or accepts is seen through Node's
 * `net.client.socket` / `net.server.socket` diagnostics channels and its `bytesWritten` / `bytesRead` are
 * summed, so the figures include Noise, Yamux, the all-reduce's frames and whatever else the host sent
 * meanwhile (identify, ping, DHT, gossip).
 *
 * Bounds, measured in the same run between two of the same peer processes over the same transport, once at the
 * start (median of 3) and again just before every row (the machine's load moves; a row's ratios use its own):
 *   simplex: one stream, one direction (peer A sends, B only acknowledges), wire bytes / time;
 *   duplex:  one stream, both directions at once (A and B each send the same amount), wire bytes one way / time.
 * A run's bound is (wire bytes the busiest peer sent) / (that throughput); the table shows the bound as a
 * share of the measured time (100% = as fast as one copy of the same bytes). With 2 peers each peer sends and
 * receives at the same time, like the duplex probe; the simplex figure is the one-direction ceiling.
 *
 * Each (size, peers) row also runs the same all-reduce with codec `none` (fp32) unless --codec none or
 * --no-fp32: its measured bytes are the per-step baseline. The communication reduction factor compares what a
 * peer sends per round (one all-reduce of the pseudo-gradient through the codec) with per-step fp32 gradient
 * exchange: H all-reduces of the same vector in fp32, each costing the fp32 run's measured wire bytes.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { subscribe } from 'node:diagnostics_channel'
import { connect, type Server, type Socket, type AddressInfo } from 'node:net'
import { rawTcpSink } from './raw-tcp-sink.ts'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost, type Host } from '../node/network/host.ts'
import { ButterflyAllReduce } from '../node/allreduce/butterfly.ts'
import { makeGroup, partitionGroup } from '../node/allreduce/group.ts'
import { plaintextAggregator } from '../node/allreduce/combine.ts'
import type { RoundGroup } from '../node/allreduce/group.ts'
import { codecFor, updateEncoder, type CodecId, type EncodedUpdate, type UpdateEncoder, type VectorCodec } from '../node/compression/index.ts'
import { BufferPool } from '../node/memory/buffer-pool.ts'

const SIMPLEX_PROTOCOL = '/nearai/bench/copy/1.0.0'
const DUPLEX_PROTOCOL = '/nearai/bench/duplex/1.0.0'

/** Diagnostics go to stderr, the table to stdout. */
function warn (...parts: unknown[]): void {
  process.stderr.write(parts.map(String).join(' ') + '\n')
}
const MB = 1024 * 1024
const CHUNK = MB

// ------------------------------------------------------------------------------------------------
// Wire bytes of this process: every TCP socket, counted by the kernel-facing side of Node.

const sockets = new Set<Socket>()
const track = (msg: unknown): void => { sockets.add((msg as { socket: Socket }).socket) }
subscribe('net.client.socket', track)
subscribe('net.server.socket', track)
/** Raw-TCP probe sockets are kept out of the totals. */
const untracked = new WeakSet<Socket>()

interface WireBytes { sent: number, received: number }
function wireBytes (): WireBytes {
  let sent = 0
  let received = 0
  for (const s of sockets) {
    if (untracked.has(s)) continue
    sent += s.bytesWritten ?? 0
    received += s.bytesRead ?? 0
  }
  return { sent, received }
}

interface RunReport { ms: number, encodeMs: number, frameBytesSent: number, checksum: number, dropped: number }

/** Reads a stream until `bytes` have arrived. */
async function drainBytes (stream: Stream, bytes: number): Promise<void> {
  let got = 0
  for await (const chunk of stream) {
    got += chunk.byteLength
    if (got >= bytes) return
  }
  if (got < bytes) throw new Error(`stream ended after ${got} of ${bytes} bytes`)
}

/** Sends `bytes` bytes in 1 MiB writes, honouring backpressure. */
async function sendBytes (stream: Stream, bytes: number): Promise<void> {
  const chunk = new Uint8Array(CHUNK).fill(7)
  for (let sent = 0; sent < bytes; sent += CHUNK) {
    if (!stream.send(chunk.subarray(0, Math.min(CHUNK, bytes - sent)))) await stream.onDrain()
  }
}

function header (bytes: number): Uint8Array {
  const head = new Uint8Array(8)
  new DataView(head.buffer).setFloat64(0, bytes)
  return head
}

/** One peer of the benchmark: a production host with the all-reduce, two copy probes and a raw TCP sink. */
class BenchPeer {
  host!: Host
  service!: ButterflyAllReduce
  server!: Server
  private vector: Float32Array | null = null

  async init (): Promise<{ peerId: string, addr: string, tcpPort: number }> {
    this.host = await createHost({
      privateKey: await generateKeyPair('Ed25519'),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      dhtServer: false,
      relayClient: false,
      maxConnections: 1000,
      // Every peer is on 127.0.0.1: the per-host inbound limit would refuse the mesh.
      inboundConnectionsPerSecond: 1000,
      allowPrivateAddresses: true
    })
    const node = this.host.libp2p
    const debug = process.env.NEARAI_BENCH_DEBUG === '1'
    const me = node.peerId.toString().slice(-6)
    // The benchmark measures throughput, not failure detection: with more peer processes than cores, a peer
    // can be descheduled for seconds, so the stall floor is raised (NEARAI_BENCH_FLOOR_MS).
    const floorMs = Number(process.env.NEARAI_BENCH_FLOOR_MS ?? 60_000)
    this.service = new ButterflyAllReduce({ host: node, logger: debug ? { debug: (o, m) => { warn(new Date().toISOString().slice(14, 23), me, m, JSON.stringify(o)) } } : undefined }, { timeouts: { floorMs }, bufferPool: this.pool })
    await this.service.start()
    // Simplex probe: read everything, answer one byte.
    await node.handle(SIMPLEX_PROTOCOL, (stream) => {
      void (async () => {
        const first = await stream[Symbol.asyncIterator]().next()
        const bytes = new DataView(first.value.subarray().buffer, first.value.subarray().byteOffset).getFloat64(0)
        await drainBytes(stream, bytes + 8 - first.value.byteLength)
        stream.send(new Uint8Array([1]))
        await stream.close()
      })().catch(err => { stream.abort(err) })
    })
    // Duplex probe: send as much as the other side sends, at the same time as reading it.
    await node.handle(DUPLEX_PROTOCOL, (stream) => {
      void (async () => {
        const it = stream[Symbol.asyncIterator]()
        const first = await it.next()
        const head = first.value.subarray()
        const bytes = new DataView(head.buffer, head.byteOffset).getFloat64(0)
        let got = head.byteLength - 8
        const reading = (async () => { while (got < bytes) { const r = await it.next(); if (r.done === true) throw new Error('duplex probe ended early'); got += r.value.byteLength } })()
        await Promise.all([reading, sendBytes(stream, bytes)])
        await stream.close()
      })().catch(err => { stream.abort(err) })
    })
    this.server = await rawTcpSink(socket => { untracked.add(socket) })
    return { peerId: node.peerId.toString(), addr: node.getMultiaddrs()[0].toString(), tcpPort: (this.server.address() as AddressInfo).port }
  }

  /** Dials the peers after this one in the list (two peers dialling each other at once can fail the handshake), then waits for the full mesh. */
  async connect (addrs: string[]): Promise<void> {
    const node = this.host.libp2p
    const mine = addrs.indexOf(node.getMultiaddrs()[0].toString())
    for (const a of addrs.slice(mine + 1)) await node.dial(multiaddr(a))
    const others = addrs.length - 1
    const deadline = Date.now() + 30_000
    while (new Set(node.getConnections().map(c => c.remotePeer.toString())).size < others) {
      if (Date.now() > deadline) throw new Error('mesh not complete')
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  }

  prepare (elements: number, seed: number): void {
    // Gradient-like values: small, with a few large ones.
    const v = new Float32Array(elements)
    let x = (seed * 2654435761) >>> 0 || 1
    for (let i = 0; i < elements; i++) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
      v[i] = (x / 0x100000000 - 0.5) * (i % 97 === 0 ? 1 : 0.01)
    }
    this.vector = v
  }

  wireBytes (): WireBytes { return wireBytes() }

  private pending: { group: RoundGroup, codec: VectorCodec, encoded: EncodedUpdate, weight: number, encodeMs: number } | null = null
  /** As in a job (run-job.ts): one encode step per codec for the whole run, sharing one pool with the all-reduce. */
  private readonly pool = new BufferPool()
  private readonly encoders = new Map<CodecId, UpdateEncoder>()

  /** The round's encode step, as AllReduceAverager runs it (the group is formed; every peer encodes, then all start). */
  encode (job: string, round: number, members: string[], weight: number, codecId: CodecId): number {
    const vector = this.vector
    if (vector == null) throw new Error('not prepared')
    const group = makeGroup({ job, round, members, vectorLength: vector.length })
    let encoder = this.encoders.get(codecId)
    if (encoder == null) { encoder = updateEncoder(codecFor(codecId), { pool: this.pool }); this.encoders.set(codecId, encoder) }
    const codec = encoder.codec
    const started = performance.now()
    const encoded = encoder.encode(vector, partitionGroup(group))
    const encodeMs = performance.now() - started
    this.vector = null
    this.pending = { group, codec, encoded, weight, encodeMs }
    return encodeMs
  }

  /** The all-reduce of the encoded parts, as AllReduceAverager runs it. */
  async allReduce (): Promise<RunReport> {
    const p = this.pending
    if (p == null) throw new Error('not encoded')
    this.pending = null
    const { group, codec, encoded, weight } = p
    const t0 = process.hrtime.bigint() / 1000n
    const r = await this.service.run({ group, vector: encoded.values, payloads: encoded.payloads, decoded: encoded.decoded, weight, aggregator: plaintextAggregator(codec), releasePayloads: () => { encoded.release() } })
    if (process.env.NEARAI_BENCH_PROF != null) warn(`profile window pid ${process.pid}: ${t0} ${process.hrtime.bigint() / 1000n}`)
    encoded.commit()
    // A cheap fingerprint of the result, to check every peer got the same bits.
    const words = new Uint32Array(r.vector.buffer, r.vector.byteOffset, r.vector.length)
    let h = 0
    for (let i = 0; i < words.length; i++) h = (Math.imul(h, 31) + words[i]) | 0
    return { ms: r.durationMs, encodeMs: p.encodeMs, frameBytesSent: r.bytesSent, checksum: h, dropped: r.dropped.length }
  }

  /** One stream, one direction: time until the receiver acknowledges the last byte, and the wire bytes it took. */
  async probeSimplex (peerId: string, bytes: number): Promise<{ ms: number, wire: number }> {
    const stream = await this.host.libp2p.dialProtocol(peerIdFromString(peerId), SIMPLEX_PROTOCOL)
    const before = wireBytes().sent
    const started = performance.now()
    const ack = (async () => { for await (const _ of stream) return })()
    if (!stream.send(header(bytes))) await stream.onDrain()
    await sendBytes(stream, bytes)
    await ack
    const ms = performance.now() - started
    const wire = wireBytes().sent - before
    await stream.close().catch(() => {})
    return { ms, wire }
  }

  /** One stream, both directions at once: each side sends `bytes`; time until this side has sent and received all. */
  async probeDuplex (peerId: string, bytes: number): Promise<{ ms: number, wire: number }> {
    const stream = await this.host.libp2p.dialProtocol(peerIdFromString(peerId), DUPLEX_PROTOCOL)
    const before = wireBytes().sent
    const started = performance.now()
    const reading = drainBytes(stream, bytes)
    if (!stream.send(header(bytes))) await stream.onDrain()
    await Promise.all([reading, sendBytes(stream, bytes)])
    const ms = performance.now() - started
    const wire = wireBytes().sent - before
    await stream.close().catch(() => {})
    return { ms, wire }
  }

  /** The same as the simplex probe over a raw TCP socket on 127.0.0.1. */
  async probeTcp (port: number, bytes: number): Promise<{ ms: number, wire: number }> {
    const socket = connect(port, '127.0.0.1')
    untracked.add(socket)
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
    const wire = socket.bytesWritten
    socket.destroy()
    return { ms, wire }
  }

  async stop (): Promise<void> {
    await this.service.stop()
    await this.host.stop()
    this.server.close()
  }
}

// ------------------------------------------------------------------------------------------------
// Peers in child processes, driven over IPC; or in this process.

interface Call { id: number, method: keyof BenchPeer, args: unknown[] }

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
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--worker'], { execArgv: ['--import', 'tsx', '--max-old-space-size=4096', ...(process.env.NEARAI_BENCH_PROF != null ? ['--cpu-prof', `--cpu-prof-dir=${process.env.NEARAI_BENCH_PROF}`] : []), ...(process.env.NEARAI_BENCH_NODE_FLAGS ?? '').split(' ').filter(f => f !== '')], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
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
        // A profiled process writes its profile as it exits: let it exit by itself.
        const done = (): void => { if (process.env.NEARAI_BENCH_PROF != null) child.once('exit', () => { resolve() }); else { child.kill(); resolve() } }
        pending.set(id, { resolve: done, reject: () => { resolve() } })
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

interface Measured {
  ms: number
  encodeMs: number
  /** Wire bytes sent / received by the busiest peer. */
  wireSent: number
  wireReceived: number
  /** Wire bytes sent, every peer. */
  perPeerSent: number[]
  /** What the all-reduce itself counted (its frames), busiest peer. */
  frameSent: number
  identical: boolean
  dropped: number
}

interface Row { sizeMB: number, peers: number, rep: number, codec: Measured, fp32?: Measured, simplexBps: number, duplexBps: number }

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string' },
      peers: { type: 'string' },
      codec: { type: 'string' },
      H: { type: 'string' },
      'probe-mb': { type: 'string' },
      'in-process': { type: 'boolean' },
      'no-fp32': { type: 'boolean' },
      reps: { type: 'string' }
    }
  })
  const list = (v: string | undefined, env: string, def: string): number[] => (v ?? process.env[env] ?? def).split(',').map(Number).filter(n => n > 0)
  const sizes = list(values.sizes, 'NEARAI_BENCH_SIZES', '16,64')
  const peerCounts = list(values.peers, 'NEARAI_BENCH_PEERS', '2,4,8')
  const codecId = (values.codec ?? process.env.NEARAI_BENCH_CODEC ?? 'fp16') as CodecId
  codecFor(codecId) // throws on an unknown id
  const withFp32 = codecId !== 'none' && values['no-fp32'] !== true
  const H = Number(values.H ?? process.env.NEARAI_BENCH_H ?? 50)
  const probeMB = Number(values['probe-mb'] ?? process.env.NEARAI_BENCH_PROBE_MB ?? 32)
  const inProcess = values['in-process'] === true || process.env.NEARAI_BENCH_IN_PROCESS === '1'
  const maxPeers = Math.max(2, ...peerCounts)
  const reps = Math.max(1, Number(values.reps ?? process.env.NEARAI_BENCH_REPS ?? 1))

  console.log(`all-reduce benchmark: codec ${codecId}${withFp32 ? ' (and fp32 for the per-step baseline)' : ''}, sizes ${sizes.join(',')} MB, peers ${peerCounts.join(',')}, H=${H}, ${inProcess ? 'all peers in one process' : 'one child process per peer'}, production hosts (createHost), copy probes ${probeMB} MB`)
  const handles = Array.from({ length: maxPeers }, () => inProcess ? inProcessPeer() : childPeer())
  const infos = await Promise.all(handles.map(async h => await h.call<{ peerId: string, addr: string, tcpPort: number }>('init')))
  await Promise.all(handles.map(async h => { await h.call('connect', infos.map(i => i.addr)) }))

  // The bounds, measured in this run between peers 0 and 1 over the production transport.
  const probeBytes = probeMB * MB
  const retry = async <T>(fn: () => Promise<T>): Promise<T> => {
    for (let attempt = 1; ; attempt++) {
      try { return await fn() } catch (err) { if (attempt >= 5) throw err; warn('probe failed, retrying:', (err as Error).message.split('\n')[0]); await new Promise(resolve => setTimeout(resolve, 500)) }
    }
  }
  const simplex: Array<{ ms: number, wire: number }> = []
  const duplex: Array<{ ms: number, wire: number }> = []
  const tcp: Array<{ ms: number, wire: number }> = []
  const probeSimplex = async (): Promise<{ ms: number, wire: number }> => await retry(async () => await handles[0].call('probeSimplex', infos[1].peerId, probeBytes))
  const probeDuplex = async (): Promise<{ ms: number, wire: number }> => await retry(async () => await handles[0].call('probeDuplex', infos[1].peerId, probeBytes))
  for (let i = 0; i < 3; i++) {
    simplex.push(await probeSimplex())
    duplex.push(await probeDuplex())
    tcp.push(await retry(async () => await handles[0].call('probeTcp', infos[1].tcpPort, probeBytes)))
  }
  const rate = (xs: Array<{ ms: number, wire: number }>): number => median(xs.map(x => x.wire / (x.ms / 1000)))
  const simplexBps = rate(simplex)
  const duplexBps = rate(duplex)
  const tcpBps = rate(tcp)
  console.log(`copy of ${probeMB} MB at the start, wire bytes/s (median of 3): simplex (one stream, one way) ${(simplexBps / MB).toFixed(0)} MB/s, duplex (one stream, both ways at once) ${(duplexBps / MB).toFixed(0)} MB/s each way, raw TCP ${(tcpBps / MB).toFixed(0)} MB/s`)
  console.log(`wire overhead of the transport on the simplex probe: ${((median(simplex.map(s => s.wire)) / probeBytes - 1) * 100).toFixed(2)}% over the payload`)
  console.log('The machine\'s load moves while the benchmark runs: every row below has its own simplex and duplex probe, taken just before it.\n')

  let round = 0
  const measure = async (sizeMB: number, n: number, codec: CodecId): Promise<Measured> => {
    const peers = handles.slice(0, n)
    const members = infos.slice(0, n).map(i => i.peerId)
    const elements = Math.floor(sizeMB * MB / 4)
    await Promise.all(peers.map(async (p, i) => { await p.call('prepare', elements, round * 100 + i + 1) }))
    await Promise.all(peers.map(async (p, i) => { await p.call('encode', 'bench', round, members, i + 1, codec) }))
    const before = await Promise.all(peers.map(async p => await p.call<WireBytes>('wireBytes')))
    const reports = await Promise.all(peers.map(async p => await p.call<RunReport>('allReduce')))
    round++
    // Let the last answers leave the socket buffers before the counters are read.
    await new Promise(resolve => setTimeout(resolve, 200))
    const after = await Promise.all(peers.map(async p => await p.call<WireBytes>('wireBytes')))
    const sent = after.map((a, i) => a.sent - before[i].sent)
    const received = after.map((a, i) => a.received - before[i].received)
    return {
      ms: Math.max(...reports.map(r => r.ms)),
      encodeMs: Math.max(...reports.map(r => r.encodeMs)),
      wireSent: Math.max(...sent),
      wireReceived: Math.max(...received),
      perPeerSent: sent,
      frameSent: Math.max(...reports.map(r => r.frameBytesSent)),
      identical: reports.every(r => r.checksum === reports[0].checksum),
      dropped: Math.max(...reports.map(r => r.dropped))
    }
  }

  // Warm-up: the first rounds in a process run cold code (JIT) and open the streams' first connections.
  for (const n of peerCounts) for (const c of new Set<CodecId>([codecId, 'none'])) await measure(1, n, c)

  const rows: Row[] = []
  const pct = (m: Measured, bps: number): number => 100 * (m.wireSent / bps * 1000) / m.ms
  for (const sizeMB of sizes) {
    for (const n of peerCounts) {
      for (let rep = 1; rep <= reps; rep++) {
        const s1 = await probeSimplex()
        const d1 = await probeDuplex()
        const simplexBps = s1.wire / (s1.ms / 1000)
        const duplexBps = d1.wire / (d1.ms / 1000)
        const fp32 = withFp32 ? await measure(sizeMB, n, 'none') : undefined
        const codec = await measure(sizeMB, n, codecId)
        rows.push({ sizeMB, peers: n, rep, codec, fp32, simplexBps, duplexBps })
        warn(`  ${sizeMB} MB × ${n} peers (${rep}/${reps}): probes ${(simplexBps / MB).toFixed(0)} / ${(duplexBps / MB).toFixed(0)} MB/s; ${codecId} ${codec.ms.toFixed(0)} ms (${pct(codec, simplexBps).toFixed(0)}% of simplex bound, ${pct(codec, duplexBps).toFixed(0)}% of duplex)` +
          (fp32 != null ? `, fp32 ${fp32.ms.toFixed(0)} ms (${pct(fp32, simplexBps).toFixed(0)}% / ${pct(fp32, duplexBps).toFixed(0)}%)` : '') +
          `; wire sent per peer ${codec.perPeerSent.map(b => (b / MB).toFixed(2)).join(', ')} MB`)
      }
    }
  }

  const pad = (s: string | number, w: number): string => String(s).padStart(w)
  const cols: Array<[string, number]> = [['size MB', 8], ['peers', 6], ['rep', 4], ['simplex MB/s', 13], ['duplex MB/s', 12], ['codec', 6], ['encode ms', 10], ['all-reduce ms', 14], ['wire sent MB', 13], ['wire recv MB', 13], ['frames MB', 10],
    ['simplex ms', 11], ['% simplex', 10], ['duplex ms', 10], ['% duplex', 9], ['same bits', 10], ['dropped', 8]]
  console.log('\n' + cols.map(([h, w]) => pad(h, w)).join(''))
  const line = (r: Row, m: Measured, id: string): void => {
    const sMs = m.wireSent / r.simplexBps * 1000
    const dMs = m.wireSent / r.duplexBps * 1000
    console.log([
      pad(r.sizeMB, 8), pad(r.peers, 6), pad(r.rep, 4), pad((r.simplexBps / MB).toFixed(0), 13), pad((r.duplexBps / MB).toFixed(0), 12), pad(id, 6), pad(m.encodeMs.toFixed(0), 10), pad(m.ms.toFixed(0), 14), pad((m.wireSent / MB).toFixed(2), 13), pad((m.wireReceived / MB).toFixed(2), 13), pad((m.frameSent / MB).toFixed(2), 10),
      pad(sMs.toFixed(0), 11), pad((100 * sMs / m.ms).toFixed(0) + '%', 10), pad(dMs.toFixed(0), 10), pad((100 * dMs / m.ms).toFixed(0) + '%', 9), pad(m.identical ? 'yes' : 'NO', 10), pad(m.dropped, 8)
    ].join(''))
  }
  for (const r of rows) {
    if (r.fp32 != null) line(r, r.fp32, 'fp32')
    line(r, r.codec, codecId)
  }
  console.log('\nwire sent/recv MB: TCP bytes of the busiest peer (Noise + Yamux + frames + background), measured. frames MB: what the all-reduce counted itself.')
  console.log('simplex/duplex MB/s: wire throughput of the row\'s probes (one stream between two peer processes; duplex: each way while both send). simplex/duplex ms: wire bytes sent / that throughput; % = that bound / all-reduce time (100% = as fast as one copy of the same bytes). encode ms (error feedback + codec, every peer at once) is not in the all-reduce time.')
  if (reps > 1) {
    console.log('\nMedian over the repetitions, % of the bound (all-reduce time):')
    for (const sizeMB of sizes) {
      for (const n of peerCounts) {
        const rs = rows.filter(r => r.sizeMB === sizeMB && r.peers === n)
        const summary = (get: (r: Row) => Measured | undefined, id: string): string => {
          const ms = rs.map(get).filter((m): m is Measured => m != null)
          if (ms.length === 0) return ''
          return `${id} ${median(rs.map(r => pct(get(r)!, r.simplexBps))).toFixed(0)}% of simplex, ${median(rs.map(r => pct(get(r)!, r.duplexBps))).toFixed(0)}% of duplex (${median(ms.map(m => m.ms)).toFixed(0)} ms)`
        }
        console.log(`  ${sizeMB} MB × ${n} peers: ${[summary(r => r.codec, codecId), summary(r => r.fp32, 'fp32')].filter(x => x !== '').join('; ')}`)
      }
    }
  }

  if (withFp32) {
    console.log(`\nCommunication per round against per-step fp32 gradient exchange (H=${H} all-reduces of the same vector in fp32), measured wire bytes of the busiest peer:`)
    console.log(['size MB', 'peers', 'fp32 MB/all-reduce', `per-step MB (H=${H})`, `${codecId} MB/round`, 'reduction', 'codec alone', 'time vs fp32'].map((h, i) => pad(h, [8, 6, 19, 19, 14, 10, 12, 13][i])).join(''))
    for (const r of rows.filter(r => r.rep === 1)) {
      const fp32 = r.fp32!
      const perStep = H * fp32.wireSent
      console.log([
        pad(r.sizeMB, 8), pad(r.peers, 6), pad((fp32.wireSent / MB).toFixed(2), 19), pad((perStep / MB).toFixed(0), 19), pad((r.codec.wireSent / MB).toFixed(2), 14),
        pad((perStep / r.codec.wireSent).toFixed(1) + 'x', 10), pad((fp32.wireSent / r.codec.wireSent).toFixed(2) + 'x', 12), pad((fp32.ms / r.codec.ms).toFixed(2) + 'x faster', 13)
      ].join(''))
    }
    console.log('reduction: H × fp32 wire bytes per all-reduce / codec wire bytes per round; codec alone: fp32 / codec wire bytes of one all-reduce.')
  }
  await Promise.all(handles.map(async h => { await h.close() }))
  process.exit(0)
}

if (process.argv.includes('--worker')) runWorker()
else await main()
