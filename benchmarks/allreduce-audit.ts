/**
 * What reducer audits cost (node/allreduce/audit.ts): the same butterfly all-reduce with audits off, on with no
 * part recomputed (rate 0: verdicts only), at the default rate, and with every part recomputed (rate 1). All
 * peers run in this process over 127.0.0.1, one group of libp2p nodes per setting; the settings take turns
 * round after round so that the machine's load moves them alike.
 *
 *   node --import tsx benchmarks/allreduce-audit.ts                       # 4 peers, 1M floats, 8 rounds
 *   node --import tsx benchmarks/allreduce-audit.ts --peers 4 --floats 4000000 --rounds 6
 *
 * Bytes are the all-reduce's own counts (frame headers and payloads, not Noise/Yamux framing). Time: the round's
 * duration at each peer (median over peers and rounds); the group's round, until its last member is done (median
 * over rounds of the slowest peer's duration: the next round's group waits for it anyway); and the audit phase at
 * each peer, from its last part's result to its last verdict (median). The coin of the default rate is seeded.
 * With audits on, every member ends about when the slowest has all results (verdicts wait for copies), so the
 * per-peer time moves towards the group's.
 */
import { parseArgs } from 'node:util'
import type { Libp2p } from 'libp2p'
import { ButterflyAllReduce, type AllReduceInit } from '../node/allreduce/butterfly.ts'
import { DEFAULT_AUDIT_RATE } from '../node/allreduce/all-reduce.ts'
import { payloadDigest } from '../node/allreduce/audit-state.ts'
import { makeGroup } from '../node/allreduce/group.ts'
import { plaintextAggregator, weightedMean } from '../node/allreduce/combine.ts'
import { identityCodec, randomVector, sameBits, startConnectedNodes, stopAll } from '../test/allreduce/helpers.ts'

const { values: args } = parseArgs({ options: { peers: { type: 'string', default: '4' }, floats: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '8' } } })
const peers = Number(args.peers)
const floats = Number(args.floats)
const rounds = Number(args.rounds)

/** Deterministic draws in [0, 1) (mulberry32). */
function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Setting { name: string, init: (i: number) => AllReduceInit }
const settings: Setting[] = [
  { name: 'off', init: () => ({ audit: false }) },
  { name: 'rate 0 (verdicts only)', init: () => ({ audit: { rate: 0 } }) },
  { name: `default (rate ${DEFAULT_AUDIT_RATE})`, init: (i) => ({ audit: { random: seeded(1000 + i) } }) },
  { name: 'rate 1 (every part)', init: () => ({ audit: { rate: 1 } }) }
]

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.floor(s.length / 2)] }

async function main (): Promise<void> {
  // SHA-256 throughput of this machine: every contribution and result is digested once when audits are on.
  const probe = new Uint8Array(16 * 1024 * 1024)
  const t0 = performance.now()
  for (let k = 0; k < 4; k++) payloadDigest(probe)
  const hashMBps = (4 * 16) / ((performance.now() - t0) / 1000)
  process.stdout.write(`sha-256 (node:crypto) on this machine: ${hashMBps.toFixed(0)} MB/s\n`)
  process.stdout.write(`${peers} peers, ${floats} floats (${(floats * 4 / 1e6).toFixed(1)} MB fp32), ${rounds} rounds per setting, identity codec, weighted mean\n\n`)

  const groups: Array<{ nodes: Array<Libp2p<any>>, services: ButterflyAllReduce[] }> = []
  for (const s of settings) {
    const nodes = await startConnectedNodes(peers)
    const services = nodes.map((n, i) => new ButterflyAllReduce({ host: n }, { timeouts: { floorMs: 3000 }, ...s.init(i) }))
    await Promise.all(services.map(async x => { await x.start() }))
    groups.push({ nodes, services })
  }
  const stats = settings.map(() => ({ groupMs: [] as number[], ms: [] as number[], auditMs: [] as number[], sent: [] as number[], auditBytes: [] as number[], recomputed: 0, faults: 0, identical: true }))
  const weights = Array.from({ length: peers }, (_v, i) => i + 1)
  for (let round = 0; round <= rounds; round++) {
    const vectors = weights.map((_w, i) => randomVector(floats, 10 * round + i))
    for (let k = 0; k < settings.length; k++) {
      const { nodes, services } = groups[k]
      const group = makeGroup({ job: 'bench-audit', round, members: nodes.map(n => n.peerId.toString()), vectorLength: floats })
      const results = await Promise.all(services.map(async (s, i) => await s.run({ group, vector: vectors[i], weight: weights[i], aggregator: plaintextAggregator(identityCodec, weightedMean) })))
      if (round === 0) continue // warm-up: connections, JIT, first speed measurements
      const st = stats[k]
      st.groupMs.push(Math.max(...results.map(r => r.durationMs)))
      for (const r of results) {
        st.ms.push(r.durationMs)
        st.sent.push(r.bytesSent)
        st.auditMs.push(r.audit?.durationMs ?? 0)
        st.auditBytes.push((r.audit?.bytesSent ?? 0) + (r.audit?.bytesReceived ?? 0))
        st.recomputed += r.audit?.recomputed.length ?? 0
        st.faults += r.audit?.faults.length ?? 0
        st.identical &&= sameBits(r.vector, results[0].vector)
      }
      process.stderr.write(`round ${round} ${settings[k].name}: ${median(results.map(r => r.durationMs)).toFixed(0)} ms\n`)
    }
  }
  const base = stats[0]
  const baseSent = base.sent.reduce((a, b) => a + b, 0) / base.sent.length
  const baseMs = median(base.ms)
  const baseGroupMs = median(base.groupMs)
  process.stdout.write('| setting | group round ms (median) | vs off | peer round ms (median) | vs off | audit phase ms (median) | bytes sent / peer / round | audit bytes (sent+received) / peer / round | vs off bytes sent | parts recomputed (all peers, all rounds) | faults | bit-identical |\n')
  process.stdout.write('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n')
  settings.forEach((s, k) => {
    const st = stats[k]
    const sent = st.sent.reduce((a, b) => a + b, 0) / st.sent.length
    const audit = st.auditBytes.reduce((a, b) => a + b, 0) / st.auditBytes.length
    process.stdout.write(`| ${s.name} | ${median(st.groupMs).toFixed(0)} | ${(median(st.groupMs) / baseGroupMs).toFixed(2)}x | ${median(st.ms).toFixed(0)} | ${(median(st.ms) / baseMs).toFixed(2)}x | ${median(st.auditMs).toFixed(0)} | ${sent.toFixed(0)} | ${audit.toFixed(0)} | +${(100 * (sent / baseSent - 1)).toFixed(2)}% | ${st.recomputed} of ${rounds * peers} | ${st.faults} | ${st.identical ? 'yes' : 'NO'} |\n`)
  })
  for (const g of groups) {
    await Promise.all(g.services.map(async s => { await s.stop() }))
    await stopAll(g.nodes)
  }
}

main().then(() => process.exit(0), (err) => { process.stderr.write(`${(err as Error).stack ?? String(err)}\n`); process.exit(1) })
