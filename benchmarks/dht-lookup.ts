/**
 * DHT lookup latency and hop count for networks of 10, 30 and 100 nodes on loopback.
 *
 *   npm run bench:dht                      # sizes 10,30,100; bucket sizes 20 (IPFS default) and 4
 *   NEARAI_BENCH_SIZES=10,30 NEARAI_BENCH_K=20 NEARAI_BENCH_LOOKUPS=40 npm run bench:dht
 *
 * The nodes run in several worker processes (at most 25 nodes each), so one event loop does not carry the
 * handshakes and maintenance of a whole network. A lookup is an iterative Kademlia query for the peers
 * closest to another node's id. Its hop count is the longest referral chain it followed: peers from the
 * querying node's own routing table are hop 1, a peer first learned from a hop-d peer's answer is hop d+1.
 * With the default bucket size of 20 a 30-node network fits in every routing table, so lookups take one hop;
 * the small bucket size shows the log N growth at sizes one machine can run.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { SingleKadDHT } from '@libp2p/kad-dht'
import { buildLibp2pOptions } from '../node/network/libp2p-options.ts'

const NODES_PER_WORKER = 25

type Request =
  | { id: number, op: 'start', count: number, k: number, bootstrap?: string }
  | { id: number, op: 'refresh' }
  | { id: number, op: 'lookup', from: number, target: string }
  | { id: number, op: 'stop' }

// ---------------------------------------------------------------- worker: hosts some of the network's nodes

type Node = Libp2p<{ dht: SingleKadDHT }>

async function startNode (k: number): Promise<Node> {
  const options = buildLibp2pOptions({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    dhtServer: true,
    relayClient: false,
    maxConnections: 1000,
    inboundConnectionsPerSecond: 100_000,
    kBucketSize: k
  })
  // The node's own DHT configuration, without gossip or Helia: only what a lookup uses.
  const { identify, ping, dht } = options.services as Record<string, unknown>
  return await createLibp2p({ ...options, transports: options.transports?.slice(0, 1), services: { identify, ping, dht } } as never) as unknown as Node
}

async function dialWithRetry (node: Node, addr: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(30_000) })
      return
    } catch (err) {
      if (attempt === 5) throw err
      await new Promise(resolve => setTimeout(resolve, 500 * attempt))
    }
  }
}

async function lookup (from: Node, target: string): Promise<{ ms: number, hops: number }> {
  const key = peerIdFromString(target).toMultihash().bytes
  const depth = new Map<string, number>()
  let hops = 0
  const started = performance.now()
  for await (const event of from.services.dht.getClosestPeers(key, { signal: AbortSignal.timeout(60_000) })) {
    if (event.name === 'SEND_QUERY') {
      // Peers queried before anyone referred them come from the node's own routing table: hop 1.
      hops = Math.max(hops, depth.get(event.to.toString()) ?? 1)
    } else if (event.name === 'PEER_RESPONSE') {
      const d = depth.get(event.from.toString()) ?? 1
      for (const closer of event.closer) {
        const id = closer.id.toString()
        if (!depth.has(id)) depth.set(id, d + 1)
      }
    }
  }
  return { ms: performance.now() - started, hops }
}

async function worker (): Promise<void> {
  const nodes: Node[] = []
  process.on('unhandledRejection', () => {}) // background maintenance dials may time out under load
  process.on('message', (req: Request) => {
    void (async () => {
      try {
        let result: unknown
        if (req.op === 'start') {
          for (let i = 0; i < req.count; i++) {
            const node = await startNode(req.k)
            if (req.bootstrap != null) await dialWithRetry(node, req.bootstrap)
            nodes.push(node)
          }
          result = nodes.map(n => ({ peerId: n.peerId.toString(), addr: n.getMultiaddrs()[0].toString() }))
        } else if (req.op === 'refresh') {
          for (const n of nodes) await n.services.dht.refreshRoutingTable({ signal: AbortSignal.timeout(30_000) }).catch(() => {})
        } else if (req.op === 'lookup') {
          result = await lookup(nodes[req.from], req.target)
        } else {
          await Promise.all(nodes.map(async n => { await n.stop() }))
        }
        process.send?.({ id: req.id, ok: true, result })
        if (req.op === 'stop') process.exit(0)
      } catch (err) {
        process.send?.({ id: req.id, ok: false, error: (err as Error).message })
      }
    })()
  })
}

// ---------------------------------------------------------------- main: builds networks, measures, prints

type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, 'id'> : never) : never

class Worker {
  private next = 0
  private readonly pending = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>()
  readonly child: ChildProcess
  constructor () {
    this.child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, NEARAI_BENCH_WORKER: '1' }, execArgv: ['--import', 'tsx'] })
    this.child.on('message', (msg: { id: number, ok: boolean, result?: unknown, error?: string }) => {
      const p = this.pending.get(msg.id)
      this.pending.delete(msg.id)
      if (msg.ok) p?.resolve(msg.result)
      else p?.reject(new Error(msg.error))
    })
  }

  async call<T> (req: RequestBody): Promise<T> {
    const id = this.next++
    return await new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.child.send({ ...req, id })
    })
  }
}

interface Row { n: number, k: number, lookups: number, meanMs: number, p95Ms: number, meanHops: number, maxHops: number }

async function run (n: number, k: number, lookups: number): Promise<Row> {
  const t0 = performance.now()
  const workers = Array.from({ length: Math.ceil(n / NODES_PER_WORKER) }, () => new Worker())
  try {
    // Node 0 (in worker 0) is the bootstrap node; every other node joins through it, one worker at a time.
    const first = await workers[0].call<Array<{ peerId: string, addr: string }>>({ op: 'start', count: 1, k })
    const bootstrap = first[0].addr
    const where: Array<{ worker: Worker, index: number, peerId: string }> = [{ worker: workers[0], index: 0, peerId: first[0].peerId }]
    let remaining = n - 1
    for (const w of workers) {
      const already = w === workers[0] ? 1 : 0
      const count = Math.min(remaining, NODES_PER_WORKER - already)
      if (count <= 0) continue
      const started = await w.call<Array<{ peerId: string }>>({ op: 'start', count, k, bootstrap })
      started.slice(-count).forEach((s, i) => where.push({ worker: w, index: already + i, peerId: s.peerId }))
      remaining -= count
    }
    for (const w of workers) await w.call({ op: 'refresh' })
    await new Promise(resolve => setTimeout(resolve, 3000))
    process.stderr.write(`  ${n} nodes in ${workers.length} processes up in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)

    const times: number[] = []
    const hops: number[] = []
    for (let i = 0; i < lookups; i++) {
      const from = where[1 + (i * 7) % (n - 1)]
      let target = where[1 + (i * 13 + 5) % (n - 1)]
      if (target === from) target = where[0]
      const r = await from.worker.call<{ ms: number, hops: number }>({ op: 'lookup', from: from.index, target: target.peerId })
      times.push(r.ms)
      hops.push(r.hops)
    }
    times.sort((a, b) => a - b)
    return {
      n,
      k,
      lookups,
      meanMs: times.reduce((a, b) => a + b, 0) / times.length,
      p95Ms: times[Math.min(times.length - 1, Math.floor(times.length * 0.95))],
      meanHops: hops.reduce((a, b) => a + b, 0) / hops.length,
      maxHops: Math.max(...hops)
    }
  } finally {
    await Promise.all(workers.map(async w => { await w.call({ op: 'stop' }).catch(() => {}) }))
  }
}

async function main (): Promise<void> {
  const sizes = (process.env.NEARAI_BENCH_SIZES ?? '10,30,100').split(',').map(Number)
  const buckets = (process.env.NEARAI_BENCH_K ?? '20,4').split(',').map(Number)
  const lookups = Number(process.env.NEARAI_BENCH_LOOKUPS ?? 50)
  const rows: Row[] = []
  for (const k of buckets) {
    for (const n of sizes) {
      process.stderr.write(`network of ${n} nodes, bucket size ${k}: ${lookups} lookups\n`)
      rows.push(await run(n, k, lookups))
    }
  }
  const pad = (s: string | number, w: number): string => String(s).padStart(w)
  console.log(`\nDHT lookups on 127.0.0.1 (${lookups} per network; hops = longest referral chain)`)
  console.log(`${pad('nodes', 6)} ${pad('k', 3)} ${pad('mean ms', 9)} ${pad('p95 ms', 9)} ${pad('mean hops', 10)} ${pad('max hops', 9)} ${pad('log2 N', 7)} ${pad('hops/log2N', 11)} ${pad('hops/N', 8)}`)
  for (const r of rows) {
    const log2n = Math.log2(r.n)
    console.log(`${pad(r.n, 6)} ${pad(r.k, 3)} ${pad(r.meanMs.toFixed(1), 9)} ${pad(r.p95Ms.toFixed(1), 9)} ${pad(r.meanHops.toFixed(2), 10)} ${pad(r.maxHops, 9)} ${pad(log2n.toFixed(2), 7)} ${pad((r.meanHops / log2n).toFixed(3), 11)} ${pad((r.meanHops / r.n).toFixed(3), 8)}`)
  }
  for (const k of buckets) {
    const mine = rows.filter(r => r.k === k)
    if (mine.length < 2) continue
    const first = mine[0]
    const last = mine[mine.length - 1]
    const growth = last.meanHops / first.meanHops
    const logGrowth = Math.log2(last.n) / Math.log2(first.n)
    console.log(`k=${k}: network grew ${(last.n / first.n).toFixed(1)}x, hops grew ${growth.toFixed(2)}x (log N grew ${logGrowth.toFixed(2)}x, N grew ${(last.n / first.n).toFixed(2)}x): ${growth <= logGrowth * 1.5 ? 'logarithmic' : 'NOT logarithmic'}`)
  }
}

if (process.env.NEARAI_BENCH_WORKER === '1') {
  await worker()
} else {
  await main()
  process.exit(0)
}
