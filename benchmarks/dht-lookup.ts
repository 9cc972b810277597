/**
 * DHT lookup latency and hop count for networks of 10, 30 and 100 nodes on loopback (127.0.0.1), and whether
 * the hop count grows like log N.
 *
 *   npm run bench:dht
 *   NEARAI_BENCH_SIZES=10,30 NEARAI_BENCH_LOOKUPS=20 npm run bench:dht
 *
 * Environment (defaults in brackets): NEARAI_BENCH_SIZES [10,30,100]; NEARAI_BENCH_LOOKUPS measured per
 * network [40]; NEARAI_BENCH_WARMUP unmeasured lookups before them [10]; NEARAI_BENCH_K bucket size [20];
 * NEARAI_BENCH_PREFIX routing-table trie depth [0]; NEARAI_BENCH_CONCURRENCY lookups in flight [1];
 * NEARAI_BENCH_TIMEOUT_S per lookup [60]; NEARAI_BENCH_FILL_S longest wait for the routing tables [60];
 * NEARAI_BENCH_BUDGET_S per network for the measured lookups, a quarter of it for the warm-up [240]: no
 * lookup starts after it, so a loaded machine runs fewer (the table says how many); NEARAI_BENCH_VERBOSE=1
 * prints every lookup. The table goes to stdout, progress to stderr.
 *
 * How. Each network's nodes run in worker processes (at most 25 nodes each), so one event loop does not carry
 * the handshakes and maintenance of a whole network. All nodes start, then join at once, each by dialling 3
 * random others; they refresh their routing tables (again whenever the tables stop growing) until the tables
 * hold 90% of what they can, and the warm-up lookups run. Each lookup asks one node for the peers closest to
 * a random key (the multihash of random bytes, as for a CID): kad-dht's iterative query (`getClosestPeers`)
 * with this network's DHT protocol and the library's alpha = 10, d = 10. A failed or timed-out lookup is
 * counted, not fatal.
 * - hops: the shortest referral chain, read from the query's own events, from the querying node's routing
 *   table to the closest peer the lookup found. 1 = that peer was in the node's routing table; h + 1 = a peer
 *   reached in h hops named it in its PEER_RESPONSE. It is the number of request rounds the answer needed.
 * - exact: the share of answered lookups whose closest peer is the true closest node of the network
 *   (computed here from every node's id); asked: peers the lookup sent a request to.
 *
 * Why the routing tables are capped. @libp2p/kad-dht 16 keeps its routing table as a trie of k-buckets split
 * on the peers' ids down to `prefixLength` (default 6) levels, so a table holds up to 2^6 × 20 = 1280 peers:
 * in a 100-node network every node can know every other, and lookups take one hop whatever N. To make routing
 * visible at sizes one machine can run, every size uses the same configuration: k = 20 (the IPFS bucket size,
 * also the size of each answer and of the lookup's closest set) and prefixLength = 0, i.e. one k-bucket of at
 * most 20 peers per node. A 10-node network fits in each table; 30 and 100 do not, so lookups are routed.
 * NEARAI_BENCH_PREFIX=6 shows the default table. Nodes join at once because a full k-bucket keeps its live
 * contacts (Kademlia's rule): joined one after another, the first nodes would fill every capped table for
 * good and the last ones would be in none.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { kadDHT, passthroughMapper, type SingleKadDHT } from '@libp2p/kad-dht'
import type { PeerId } from '@libp2p/interface'
import { createLibp2p, type Libp2p } from 'libp2p'
import { sha256 } from 'multiformats/hashes/sha2'
import { buildLibp2pOptions } from '../node/network/libp2p-options.ts'
import { DHT_PROTOCOL } from '../protocol/ids.ts'
import { DHT_NAMESPACE } from '../protocol/dht-keys.ts'
import { selectRecord, verifyRecord } from '../protocol/records.ts'

const NODES_PER_WORKER = 25
/** How many random nodes each node dials to join. */
const JOIN_CONTACTS = 3

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

interface Settings {
  sizes: number[]
  lookups: number
  warmup: number
  k: number
  prefixLength: number
  concurrency: number
  timeoutMs: number
  fillMs: number
  budgetMs: number
}

function settingsFromEnv (env: NodeJS.ProcessEnv): Settings {
  const num = (name: string, fallback: number): number => {
    const v = Number(env[name] ?? fallback)
    if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a non-negative number`)
    return v
  }
  const sizes = (env.NEARAI_BENCH_SIZES ?? '10,30,100').split(',').map(Number)
  if (sizes.some(n => !Number.isInteger(n) || n < 3)) throw new Error('NEARAI_BENCH_SIZES: whole numbers of at least 3')
  return {
    sizes,
    lookups: num('NEARAI_BENCH_LOOKUPS', 40),
    warmup: num('NEARAI_BENCH_WARMUP', 10),
    k: num('NEARAI_BENCH_K', 20),
    prefixLength: num('NEARAI_BENCH_PREFIX', 0),
    concurrency: Math.max(1, num('NEARAI_BENCH_CONCURRENCY', 1)),
    timeoutMs: num('NEARAI_BENCH_TIMEOUT_S', 60) * 1000,
    fillMs: num('NEARAI_BENCH_FILL_S', 60) * 1000,
    budgetMs: num('NEARAI_BENCH_BUDGET_S', 240) * 1000
  }
}

type Request =
  | { id: number, op: 'start', count: number, k: number, prefixLength: number }
  | { id: number, op: 'join', contacts: string[][] }
  | { id: number, op: 'refresh' }
  | { id: number, op: 'tables' }
  | { id: number, op: 'lookup', from: number, key: string, timeoutMs: number }
  | { id: number, op: 'stop' }

interface LookupResult { ms: number, hops: number, closest: string, queried: number }

// ---------------------------------------------------------------- worker: hosts some of the network's nodes

type Node = Libp2p<{ dht: SingleKadDHT }>

/** The part of kad-dht's routing table a lookup starts from; not in the package's public types. */
interface RoutingTableInternals { closestPeers: (kadId: Uint8Array, options?: { count?: number }) => PeerId[] }

async function startNode (k: number, prefixLength: number): Promise<Node> {
  const options = buildLibp2pOptions({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    dhtServer: true,
    relayClient: false,
    maxConnections: 1000,
    inboundConnectionsPerSecond: 100_000
  })
  // The node's own DHT configuration (buildLibp2pOptions), plus the trie depth it does not expose; without
  // gossip, relay or Helia: only what a lookup uses.
  const { identify, ping } = options.services as Record<string, unknown>
  const dht = kadDHT({
    protocol: DHT_PROTOCOL,
    clientMode: false,
    kBucketSize: k,
    prefixLength,
    peerInfoMapper: passthroughMapper,
    validators: { [DHT_NAMESPACE]: async (key, value) => { await verifyRecord(key, value) } },
    selectors: { [DHT_NAMESPACE]: selectRecord },
    initialQuerySelfInterval: 500
  })
  // No connection monitor: it pings every open connection every 10 s, and a lookup leaves its node connected
  // to most of the network; 100 nodes on one machine would spend its CPU on thousands of pings.
  return await createLibp2p({
    ...options,
    transports: options.transports?.slice(0, 1),
    connectionMonitor: { enabled: false },
    services: { identify, ping, dht }
  } as never) as unknown as Node
}

async function dialWithRetry (node: Node, addr: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(30_000) })
      return
    } catch (err) {
      if (attempt === 5) throw err
      await sleep(500 * attempt)
    }
  }
}

function kadId (bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

/** XOR distance of two 32-byte Kademlia ids, as a big-endian hex string (compares as a number). */
function distance (a: Uint8Array, b: Uint8Array): string {
  return Buffer.from(a.map((x, i) => x ^ b[i])).toString('hex')
}

async function lookup (from: Node, keyHex: string, timeoutMs: number): Promise<LookupResult> {
  const key = Uint8Array.from(Buffer.from(keyHex, 'hex'))
  const target = kadId(key)
  const dht = from.services.dht
  // The query starts from the k closest peers of this node's routing table: hop 1.
  const table = dht.routingTable as unknown as RoutingTableInternals
  const start = new Set(table.closestPeers(target, { count: dht.k }).map(p => p.toString()))
  const referrals = new Map<string, string[]>() // responder -> peers it named
  const queried = new Set<string>()
  let closest: { id: string, d: string } | undefined
  const started = performance.now()
  for await (const event of dht.getClosestPeers(key, { signal: AbortSignal.timeout(timeoutMs) })) {
    if (event.name === 'SEND_QUERY') {
      queried.add(event.to.toString())
    } else if (event.name === 'PEER_RESPONSE') {
      referrals.set(event.from.toString(), event.closer.map(p => p.id.toString()))
    } else if (event.name === 'FINAL_PEER') {
      const d = distance(kadId(event.peer.id.toMultihash().bytes), target)
      if (closest == null || d < closest.d) closest = { id: event.peer.id.toString(), d }
    }
  }
  const ms = performance.now() - started
  // Breadth-first over the referrals this query saw: the shortest chain to each peer. A queried peer nobody
  // named came from the routing table too (it changed between the snapshot and the query's start).
  const named = new Set([...referrals.values()].flat())
  const hopsTo = new Map<string, number>()
  let frontier = [...queried].filter(p => start.has(p) || !named.has(p))
  for (const p of frontier) hopsTo.set(p, 1)
  for (let h = 2; frontier.length > 0; h++) {
    const next: string[] = []
    for (const p of frontier) {
      for (const q of referrals.get(p) ?? []) {
        if (!hopsTo.has(q)) { hopsTo.set(q, h); next.push(q) }
      }
    }
    frontier = next
  }
  if (closest == null) throw new Error('lookup found no peers')
  const hops = hopsTo.get(closest.id)
  if (hops == null) throw new Error('closest peer was reached by no referral chain the query reported')
  return { ms, hops, closest: closest.id, queried: queried.size }
}

/**
 * A node whose first contacts all failed the routing table's liveness ping (it happens under load) has an
 * empty table and nothing that would fill it: connect to its contacts afresh, so it tries again.
 */
async function rejoinIfAlone (node: Node, contacts: string[]): Promise<void> {
  for (let attempt = 0; attempt < 3 && node.services.dht.routingTable.size === 0; attempt++) {
    for (const addr of contacts) {
      await node.hangUp(multiaddr(addr)).catch(() => {})
      await dialWithRetry(node, addr).catch(() => {})
    }
    for (let waited = 0; waited < 10_000 && node.services.dht.routingTable.size === 0; waited += 250) await sleep(250)
  }
}

async function worker (): Promise<void> {
  const nodes: Node[] = []
  let contacts: string[][] = []
  process.on('unhandledRejection', () => {}) // background maintenance dials may time out under load
  process.on('message', (req: Request) => {
    void (async () => {
      try {
        let result: unknown
        if (req.op === 'start') {
          const fresh: Node[] = []
          for (let i = 0; i < req.count; i++) fresh.push(await startNode(req.k, req.prefixLength))
          nodes.push(...fresh)
          result = fresh.map(n => ({ peerId: n.peerId.toString(), addr: n.getMultiaddrs()[0].toString() }))
        } else if (req.op === 'join') {
          contacts = req.contacts
          await Promise.all(nodes.map(async (n, i) => {
            for (const addr of contacts[i]) await dialWithRetry(n, addr).catch(() => {})
          }))
        } else if (req.op === 'refresh') {
          for (const [i, n] of nodes.entries()) {
            await rejoinIfAlone(n, contacts[i] ?? [])
            await n.services.dht.refreshRoutingTable({ signal: AbortSignal.timeout(30_000) }).catch(() => {})
          }
        } else if (req.op === 'tables') {
          result = nodes.map(n => n.services.dht.routingTable.size)
        } else if (req.op === 'lookup') {
          result = await lookup(nodes[req.from], req.key, req.timeoutMs)
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
    this.child.on('exit', code => {
      for (const p of this.pending.values()) p.reject(new Error(`worker exited (${code})`))
      this.pending.clear()
    })
  }

  /** A request, answered or failed within `timeoutMs` (so a stuck worker costs one lookup, not the run). */
  async call<T> (req: RequestBody, timeoutMs = 600_000): Promise<T> {
    const id = this.next++
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { this.pending.delete(id); reject(new Error(`${req.op} got no answer in ${timeoutMs} ms`)) }, timeoutMs)
      this.pending.set(id, {
        resolve: v => { clearTimeout(timer); resolve(v) },
        reject: e => { clearTimeout(timer); reject(e) }
      })
      this.child.send({ ...req, id }, err => {
        if (err == null) return
        clearTimeout(timer)
        this.pending.delete(id)
        reject(err)
      })
    })
  }
}

interface Row {
  n: number
  table: number
  lookups: number
  failed: number
  exact: number
  meanMs: number
  p95Ms: number
  meanHops: number
  maxHops: number
  meanQueried: number
}

const mean = (xs: number[]): number => xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length

async function run (n: number, s: Settings): Promise<Row> {
  const t0 = performance.now()
  const workers = Array.from({ length: Math.ceil(n / NODES_PER_WORKER) }, () => new Worker())
  try {
    // Start every node first, then let all of them join at once, each through JOIN_CONTACTS random others
    // (see the header for why not one after another).
    const { k, prefixLength } = s
    const counts = workers.map((_, i) => Math.min(NODES_PER_WORKER, n - i * NODES_PER_WORKER))
    const started = await Promise.all(workers.map(async (w, i) => await w.call<Array<{ peerId: string, addr: string }>>({ op: 'start', count: counts[i], k, prefixLength })))
    const where: Array<{ worker: Worker, index: number, peerId: string, addr: string }> = []
    started.forEach((list, i) => list.forEach((node, index) => where.push({ worker: workers[i], index, ...node })))
    if (where.length !== n) throw new Error(`started ${where.length} nodes, wanted ${n}`)
    const contactsOf = (me: number): string[] => {
      const others = where.map((_, j) => j).filter(j => j !== me)
      for (let i = others.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [others[i], others[j]] = [others[j], others[i]] }
      return others.slice(0, JOIN_CONTACTS).map(j => where[j].addr)
    }
    await Promise.all(workers.map(async (w, i) => {
      const mine = where.map((x, j) => ({ x, j })).filter(({ x }) => x.worker === w).map(({ j }) => contactsOf(j))
      await w.call({ op: 'join', contacts: mine })
    }))
    process.stderr.write(`  ${n} nodes in ${workers.length} processes up and joined in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`)

    // Let the routing tables fill: refresh every node, again whenever the tables stop growing, until they hold
    // 90% of what they can (the network or the cap) or NEARAI_BENCH_FILL_S is over; then warm up with lookups
    // that are not measured (each connects to many peers, and connections fill tables too).
    const t1 = performance.now()
    const refresh = async (): Promise<void> => {
      await Promise.all(workers.map(async w => { await w.call({ op: 'refresh' }, s.fillMs + 30_000).catch(() => {}) }))
    }
    const tableSizes = async (): Promise<number[]> => (await Promise.all(workers.map(async w => await w.call<number[]>({ op: 'tables' })))).flat()
    const total = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)
    const want = 0.9 * Math.min(n - 1, 2 ** prefixLength * k)
    await refresh()
    let sizes = await tableSizes()
    for (let still = 0; mean(sizes) < want && performance.now() - t1 < s.fillMs;) {
      await sleep(2000)
      const now = await tableSizes()
      still = total(now) > total(sizes) ? 0 : still + 1
      sizes = now
      if (still === 2) { await refresh(); still = 0 }
    }
    const describe = (xs: number[]): string => `${Math.min(...xs)}-${Math.max(...xs)} peers, mean ${mean(xs).toFixed(1)}`
    process.stderr.write(`  routing tables settled in ${((performance.now() - t1) / 1000).toFixed(1)} s: ${describe(sizes)}\n`)

    // Lookups from node (i * 7) mod N in turn, for random keys, at most `concurrency` in flight.
    const kadIds = where.map(w => ({ peerId: w.peerId, id: kadId(peerIdFromString(w.peerId).toMultihash().bytes) }))
    const times: number[] = []
    const hops: number[] = []
    const queried: number[] = []
    let failed = 0
    let exact = 0
    const lookupOnce = async (i: number, measured: boolean): Promise<void> => {
      const from = where[(i * 7) % n]
      const key = (await sha256.digest(randomBytes(32))).bytes
      const target = kadId(key)
      const truth = kadIds.filter(x => x.peerId !== from.peerId).reduce((best, x) => distance(x.id, target) < distance(best.id, target) ? x : best)
      try {
        const r = await from.worker.call<LookupResult>({ op: 'lookup', from: from.index, key: Buffer.from(key).toString('hex'), timeoutMs: s.timeoutMs }, s.timeoutMs + 30_000)
        if (process.env.NEARAI_BENCH_VERBOSE === '1') process.stderr.write(`  ${measured ? 'lookup' : 'warm-up'} ${i}: ${r.ms.toFixed(0)} ms, ${r.hops} hops, ${r.queried} asked${r.closest === truth.peerId ? '' : ', missed the closest node'}\n`)
        if (!measured) return
        times.push(r.ms)
        hops.push(r.hops)
        queried.push(r.queried)
        if (r.closest === truth.peerId) exact++
      } catch (err) {
        if (measured) failed++
        process.stderr.write(`  ${measured ? 'lookup' : 'warm-up'} ${i} from node ${where.indexOf(from)} failed: ${(err as Error).message}\n`)
      }
    }
    /** Runs lookups from..from+count-1; starts no new one after `budgetMs`. Returns how many it started. */
    const lookups = async (from: number, count: number, measured: boolean, budgetMs: number): Promise<number> => {
      const deadline = performance.now() + budgetMs
      let next = from
      await Promise.all(Array.from({ length: Math.min(s.concurrency, count) }, async () => {
        while (next < from + count && performance.now() < deadline) await lookupOnce(next++, measured)
      }))
      return next - from
    }
    const t2 = performance.now()
    const warmed = await lookups(s.lookups, s.warmup, false, s.budgetMs / 4)
    sizes = await tableSizes()
    process.stderr.write(`  ${warmed} warm-up lookups in ${((performance.now() - t2) / 1000).toFixed(1)} s; routing tables now ${describe(sizes)}\n`)
    const done = await lookups(0, s.lookups, true, s.budgetMs)
    if (done < s.lookups) process.stderr.write(`  time budget (NEARAI_BENCH_BUDGET_S) spent: ${done} of ${s.lookups} lookups run\n`)
    process.stderr.write(`  ${done} lookups measured; ${((performance.now() - t0) / 1000).toFixed(1)} s for this network\n`)
    times.sort((a, b) => a - b)
    return {
      n,
      table: mean(sizes),
      lookups: done,
      failed,
      exact,
      meanMs: mean(times),
      p95Ms: times.length === 0 ? NaN : times[Math.min(times.length - 1, Math.ceil(times.length * 0.95) - 1)],
      meanHops: mean(hops),
      maxHops: hops.length === 0 ? NaN : Math.max(...hops),
      meanQueried: mean(queried)
    }
  } finally {
    await Promise.all(workers.map(async w => { await w.call({ op: 'stop' }, 30_000).catch(() => { w.child.kill() }) }))
  }
}

function report (rows: Row[], s: Settings): void {
  const cap = 2 ** s.prefixLength * s.k
  console.log(`\nDHT lookups on 127.0.0.1: k = ${s.k}, prefixLength = ${s.prefixLength} (routing table <= ${cap} peers), alpha = 10, d = 10; ` +
    `up to ${s.lookups} lookups of random keys per network (${s.budgetMs / 1000} s budget) after ${s.warmup} warm-up, ${s.concurrency} at a time, ${s.timeoutMs / 1000} s timeout each`)
  const cols: Array<[string, number, (r: Row) => string]> = [
    ['nodes', 6, r => String(r.n)],
    ['table', 6, r => r.table.toFixed(1)],
    ['ok/all', 7, r => `${r.lookups - r.failed}/${r.lookups}`],
    ['failed', 6, r => String(r.failed)],
    ['exact', 6, r => r.lookups - r.failed === 0 ? '-' : `${Math.round(100 * r.exact / (r.lookups - r.failed))}%`],
    ['asked', 6, r => r.meanQueried.toFixed(1)],
    ['mean ms', 8, r => r.meanMs.toFixed(1)],
    ['p95 ms', 8, r => r.p95Ms.toFixed(1)],
    ['hops', 5, r => r.meanHops.toFixed(2)],
    ['max', 4, r => String(r.maxHops)],
    ['log2 N', 6, r => Math.log2(r.n).toFixed(2)],
    ['hops/log2N', 10, r => (r.meanHops / Math.log2(r.n)).toFixed(3)],
    ['hops/N', 7, r => (r.meanHops / r.n).toFixed(4)]
  ]
  console.log(cols.map(([h, w]) => h.padStart(w)).join(' '))
  for (const r of rows) console.log(cols.map(([, w, f]) => f(r).padStart(w)).join(' '))
  console.log('table: mean routing-table size; exact: share of answered lookups whose closest peer is the true closest node; ' +
    'asked: peers queried per lookup; hops: mean referral-chain length to the closest peer found (1 = in own table)')

  const measured = rows.filter(r => Number.isFinite(r.meanHops))
  if (measured.length < 2) return
  const a = measured[0]
  const b = measured[measured.length - 1]
  const hopGrowth = b.meanHops / a.meanHops
  const logGrowth = Math.log2(b.n) / Math.log2(a.n)
  const linGrowth = b.n / a.n
  const degraded = measured.filter(r => r.failed > 0.1 * r.lookups || r.exact < 0.9 * (r.lookups - r.failed) || r.lookups < s.lookups / 2)
  for (const r of degraded) {
    console.log(`warning: the ${r.n}-node network's lookups were degraded (${r.lookups} of ${s.lookups} run, ${r.failed} failed, ` +
      `${Math.round(100 * r.exact / Math.max(1, r.lookups - r.failed))}% exact): the machine was probably overloaded`)
  }
  const perLog = measured.map(r => r.meanHops / Math.log2(r.n))
  console.log(`hops/log2N ranges ${Math.min(...perLog).toFixed(3)}-${Math.max(...perLog).toFixed(3)}; hops/N falls ${(a.meanHops / a.n / (b.meanHops / b.n)).toFixed(1)}x`)
  // Which growth is the measured one nearest to, on a log scale: none (1x), log N's, or N's?
  const models: Array<[number, string]> = [
    [1, 'hops stay flat (do the routing tables hold the whole network?)'],
    [logGrowth, 'hops grow like log N, not like N'],
    [linGrowth, 'hops grow like N, NOT like log N']
  ]
  const nearest = models.reduce((best, m) => Math.abs(Math.log(hopGrowth / m[0])) < Math.abs(Math.log(hopGrowth / best[0])) ? m : best)
  const verdict = degraded.length > 0 ? `no verdict: lookups degraded at ${degraded.map(r => r.n).join(', ')} nodes (rerun on a quieter machine)` : nearest[1]
  console.log(`${a.n} -> ${b.n} nodes: N grew ${linGrowth.toFixed(1)}x, log2 N grew ${logGrowth.toFixed(2)}x, hops grew ${hopGrowth.toFixed(2)}x ` +
    `(${a.meanHops.toFixed(2)} -> ${b.meanHops.toFixed(2)}): ${verdict}`)
}

async function main (): Promise<void> {
  const s = settingsFromEnv(process.env)
  const rows: Row[] = []
  const t0 = performance.now()
  for (const n of s.sizes) {
    process.stderr.write(`network of ${n} nodes (k = ${s.k}, prefixLength = ${s.prefixLength}): ${s.lookups} lookups\n`)
    rows.push(await run(n, s))
  }
  report(rows, s)
  process.stderr.write(`total ${((performance.now() - t0) / 1000).toFixed(0)} s\n`)
}

if (process.env.NEARAI_BENCH_WORKER === '1') {
  await worker()
} else {
  await main()
  process.exit(0)
}
