/**
 * DHT lookup latency and hop count for networks of 10, 30 and 100 nodes on loopback (one process).
 *
 *   npm run bench:dht                      # sizes 10,30,100; bucket sizes 20 (IPFS default) and 4
 *   NEARAI_BENCH_SIZES=10,30 NEARAI_BENCH_K=20 NEARAI_BENCH_LOOKUPS=40 npm run bench:dht
 *
 * A lookup is an iterative Kademlia query for the peers closest to another node's id. Its hop count is the
 * longest referral chain it followed: peers from our own routing table are hop 1, a peer first learned from
 * a hop-d peer's answer is hop d+1. With the default bucket size of 20 a 30-node network fits in every routing
 * table, so lookups take one hop; the small bucket size shows the log N growth at sizes a laptop can run.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { SingleKadDHT } from '@libp2p/kad-dht'
import { buildLibp2pOptions } from '../node/network/libp2p-options.ts'

/** The node's own libp2p configuration, reduced to what a lookup uses (no gossip, no Helia), so 100 fit in one process. */
interface Host { libp2p: Libp2p<{ dht: SingleKadDHT }>, stop: () => Promise<void> }

interface Row { n: number, k: number, lookups: number, meanMs: number, p95Ms: number, meanHops: number, maxHops: number }

const sizes = (process.env.NEARAI_BENCH_SIZES ?? '10,30,100').split(',').map(Number)
const buckets = (process.env.NEARAI_BENCH_K ?? '20,4').split(',').map(Number)
const lookups = Number(process.env.NEARAI_BENCH_LOOKUPS ?? 50)

async function startNode (k: number): Promise<Host> {
  const options = buildLibp2pOptions({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    dhtServer: true,
    relayClient: false,
    maxConnections: 1000,
    inboundConnectionsPerSecond: 100_000,
    kBucketSize: k
  })
  const { identify, ping, dht } = options.services as Record<string, unknown>
  const libp2p = await createLibp2p({ ...options, transports: options.transports?.slice(0, 1), services: { identify, ping, dht } } as never) as unknown as Libp2p<{ dht: SingleKadDHT }>
  return { libp2p, stop: async () => { await libp2p.stop() } }
}

// Background maintenance dials of 100 nodes in one event loop can time out; that is load, not a bug to crash on.
process.on('unhandledRejection', (err) => { process.stderr.write(`  (background: ${(err as Error).message})\n`) })

async function dialWithRetry (node: Host, addr: Host): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await node.libp2p.dial(addr.libp2p.getMultiaddrs()[0], { signal: AbortSignal.timeout(30_000) })
      return
    } catch (err) {
      if (attempt === 3) throw err
      await new Promise(resolve => setTimeout(resolve, 500 * attempt))
    }
  }
}

/**
 * All nodes share one process (and its event loop), so the network is grown gently: one node at a time
 * joins through the bootstrap node, then each refreshes its routing table in turn, as nodes do over time.
 */
async function buildNetwork (n: number, k: number): Promise<Host[]> {
  const boot = await startNode(k)
  const nodes = [boot]
  for (let i = 1; i < n; i++) {
    const node = await startNode(k)
    await dialWithRetry(node, boot)
    nodes.push(node)
  }
  for (const node of nodes) {
    await node.libp2p.services.dht.refreshRoutingTable({ signal: AbortSignal.timeout(30_000) }).catch(() => {})
  }
  await new Promise(resolve => setTimeout(resolve, 3000))
  return nodes
}

async function measureLookup (from: Host, target: Host): Promise<{ ms: number, hops: number }> {
  const depth = new Map<string, number>()
  // Peers queried before anyone referred them come from our own routing table: hop 1.
  let hops = 0
  const started = performance.now()
  for await (const event of from.libp2p.services.dht.getClosestPeers(target.libp2p.peerId.toMultihash().bytes)) {
    if (event.name === 'SEND_QUERY') {
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

async function run (n: number, k: number): Promise<Row> {
  const t0 = performance.now()
  const nodes = await buildNetwork(n, k)
  process.stderr.write(`  network of ${n} up in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)
  try {
    const times: number[] = []
    const hops: number[] = []
    for (let i = 0; i < lookups; i++) {
      const from = nodes[1 + (i * 7) % (n - 1)]
      let target = nodes[1 + (i * 13 + 5) % (n - 1)]
      if (target === from) target = nodes[0]
      const r = await measureLookup(from, target)
      if (i % 10 === 9) process.stderr.write(`  ${i + 1}/${lookups} lookups\n`)
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
    await Promise.all(nodes.map(async node => { await node.stop() }))
  }
}

const rows: Row[] = []
for (const k of buckets) {
  for (const n of sizes) {
    process.stderr.write(`building a network of ${n} nodes (k=${k}) and running ${lookups} lookups...\n`)
    rows.push(await run(n, k))
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
  console.log(`k=${k}: network grew ${(last.n / first.n).toFixed(1)}x, hops grew ${growth.toFixed(2)}x (log N grew ${(Math.log2(last.n) / Math.log2(first.n)).toFixed(2)}x): ${growth <= Math.log2(last.n) / Math.log2(first.n) * 1.5 ? 'logarithmic' : 'NOT logarithmic'}`)
}
process.exit(0)
