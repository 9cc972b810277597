import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import { ButterflyAllReduce, type AllReduceInit, type AllReduceResult } from '../../node/allreduce/butterfly.ts'
import { makeGroup } from '../../node/allreduce/group.ts'
import { plaintextAggregator, weightedMean } from '../../node/allreduce/combine.ts'
import { jobAggregator } from '../../node/allreduce/aggregation.ts'
import { decodeRejected, REJECTED_META_KEY } from '../../node/allreduce/update-checks.ts'
import { codecFor } from '../../node/compression/index.ts'
import { auditorOf, auditShift } from '../../node/allreduce/audit.ts'
import { decodeFrameHeader, encodeFrameHeader, groupHash, validateFrameHeader, type FrameContext, type VerdictHeader } from '../../protocol/allreduce.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { identityCodec, maxAbsDiff, randomVector, sameBits, startConnectedNodes, stopAll, weightedMeanReference } from './helpers.ts'

// The default 3 s floor: no member here fails, and a shorter one drops members that a loaded machine merely pauses.
const TIMEOUTS = { floorMs: 3000, multiplier: 2, defaultBps: 50 * 1024 * 1024, defaultLatencyMs: 20, minSampleBytes: 8 * 1024 }

/** A lie a reducer might tell: the first value of its part's result, plus one. */
function lie (payload: Uint8Array): Uint8Array {
  const out = payload.slice()
  const v = new Float32Array(out.buffer, 0, out.byteLength / 4)
  v[0] += 1
  return out
}

describe('reducer audits on 127.0.0.1', function () {
  this.timeout(60_000)
  let nodes: Array<Libp2p<any>> = []
  let services: ButterflyAllReduce[] = []

  afterEach(async () => {
    await Promise.all(services.map(async s => { try { await s.stop() } catch {} }))
    await stopAll(nodes)
    nodes = []
    services = []
  })

  async function startGroup (n: number, init: (i: number) => AllReduceInit): Promise<string[]> {
    nodes = await startConnectedNodes(n)
    services = nodes.map((node, i) => new ButterflyAllReduce({ host: node }, { timeouts: TIMEOUTS, ...init(i) }))
    await Promise.all(services.map(async s => { await s.start() }))
    return nodes.map(n => n.peerId.toString())
  }

  const aggregator = plaintextAggregator(identityCodec, weightedMean)

  it('a reducer that lies about its part is caught; every honest member ends with the honest result and names the liar, who is left out of the next round', async () => {
    const length = 40_000
    const weights = [3, 1, 4, 2]
    let lying = false
    const ids = await startGroup(4, () => ({ audit: { rate: 1 }, testing: { corruptResult: (_part, payload) => lying ? lie(payload) : payload } }))
    const vectors = ids.map((_id, i) => randomVector(length, 900 + i, 5))
    const run = async (round: number, who: number[]): Promise<Array<Promise<AllReduceResult>>> => {
      const group = makeGroup({ job: 'audit', round, members: ids, vectorLength: length })
      return who.map(async i => await services[i].run({ group, vector: vectors[i], weight: weights[i], aggregator }))
    }
    const members = makeGroup({ job: 'audit', round: 1, members: ids, vectorLength: length }).members
    const liar = members[1]
    const liarIndex = ids.indexOf(liar)
    const honestIdx = [0, 1, 2, 3].filter(i => i !== liarIndex)

    // The same inputs, nobody lying: the honest result.
    const honest = await Promise.all(await run(1, [0, 1, 2, 3]))
    for (const r of honest) assert.deepEqual(r.audit?.faults, [])

    // Only the liar's services lie (the hook is the reducer's own result path).
    lying = true
    for (const i of honestIdx) (services[i] as { corruptResult?: unknown }).corruptResult = undefined
    const runs = await run(2, [0, 1, 2, 3])
    const results = await Promise.all(runs)
    const g2 = makeGroup({ job: 'audit', round: 2, members: ids, vectorLength: length })
    const auditor = auditorOf(members, 1, liar, auditShift(g2.hash, 4))
    assert.ok(auditor != null && auditor !== liar)
    for (const i of honestIdx) {
      const r = results[i]
      assert.equal(sameBits(r.vector, honest[i].vector), true, `member ${i} holds the honest result`)
      const faults = r.audit?.faults ?? []
      assert.equal(faults.length, 1, JSON.stringify(faults))
      assert.equal(faults[0].reducer, liar)
      assert.equal(faults[0].part, 1)
      assert.equal(faults[0].kind, 'wrong-result')
      assert.equal(faults[0].detectedBy, auditor, 'the part\'s auditor flagged it')
      assert.notEqual(faults[0].received, faults[0].recomputed)
      assert.equal(r.audit?.recomputed.includes(1), true)
      assert.equal(services[i].excluded.has(liar), true)
    }
    // The liar itself believes its own (honest) reduction: only what it sent was wrong.
    assert.equal(maxAbsDiff(results[liarIndex].vector, honest[liarIndex].vector), 0)

    // Next round: the liar is out; its part goes to a stand-in and the honest members average without it.
    const next = await run(3, [0, 1, 2, 3])
    const after = await Promise.all(honestIdx.map(async i => await next[i]))
    await next[liarIndex].catch(() => {})
    const reference = weightedMeanReference(honestIdx.map(i => vectors[i]), honestIdx.map(i => weights[i]))
    for (const r of after) {
      assert.deepEqual(r.excluded, [liar])
      assert.equal(r.dropped.includes(liar), true)
      assert.equal(r.contributors.some(c => c.peer === liar), false)
      assert.equal(r.parts[1].reducedBy, members[2])
      assert.deepEqual(r.audit?.faults, [])
      assert.ok(maxAbsDiff(r.vector, reference) < 1e-5, `max error ${maxAbsDiff(r.vector, reference)}`)
      assert.equal(sameBits(r.vector, after[0].vector), true, 'bit-identical')
    }
  })

  it('a reducer that lies to one member only is caught with no part sampled: that copy differs from the auditor\'s', async () => {
    const length = 30_000
    const weights = [2, 7, 1, 5]
    let lies = 0
    let lying = false
    const ids = await startGroup(4, () => ({ audit: { rate: 0 }, testing: { corruptResult: (_part, payload) => (lying && lies++ === 0) ? lie(payload) : payload } }))
    const vectors = ids.map((_id, i) => randomVector(length, 950 + i, 3))
    const members = makeGroup({ job: 'equivocate', round: 1, members: ids, vectorLength: length }).members
    const liarIndex = ids.indexOf(members[3])
    services.forEach((s, i) => { if (i !== liarIndex) (s as { corruptResult?: unknown }).corruptResult = undefined })
    const runAll = async (round: number): Promise<AllReduceResult[]> => {
      const group = makeGroup({ job: 'equivocate', round, members: ids, vectorLength: length })
      return await Promise.all(services.map(async (s, i) => await s.run({ group, vector: vectors[i], weight: weights[i], aggregator })))
    }
    const honest = await runAll(1)
    lying = true
    const results = await runAll(2)
    assert.equal(lies > 0, true)
    const honestIdx = [0, 1, 2, 3].filter(i => i !== liarIndex)
    for (const i of honestIdx) assert.equal(sameBits(results[i].vector, honest[i].vector), true, `member ${i} holds the honest result`)
    const reporters = honestIdx.filter(i => results[i].audit?.faults.some(f => f.reducer === members[3] && f.part === 3 && f.kind === 'wrong-result') === true)
    assert.equal(reporters.length, 1, 'the member lied to names the liar')
  })

  it('honest rounds with every part recomputed report no fault, stay bit-identical, and cost one part per auditor', async () => {
    const length = 100_000
    const weights = [5, 3, 8, 1]
    const ids = await startGroup(4, () => ({ audit: { rate: 1 } }))
    for (let round = 1; round <= 3; round++) {
      const vectors = ids.map((_id, i) => randomVector(length, 100 * round + i, 2))
      const group = makeGroup({ job: 'honest', round, members: ids, vectorLength: length })
      const results = await Promise.all(services.map(async (s, i) => await s.run({ group, vector: vectors[i], weight: weights[i], aggregator })))
      const reference = weightedMeanReference(vectors, weights)
      const recomputed = new Set<number>()
      for (const r of results) {
        assert.deepEqual(r.audit?.faults, [])
        assert.deepEqual(r.audit?.inconclusive, [])
        assert.deepEqual(r.dropped, [])
        assert.deepEqual(r.audit?.missingVerdicts, [])
        assert.deepEqual(r.excluded, [])
        assert.ok(maxAbsDiff(r.vector, reference) < 1e-5)
        assert.equal(sameBits(r.vector, results[0].vector), true, 'bit-identical')
        for (const p of r.audit?.recomputed ?? []) recomputed.add(p)
        // An auditor fetches the other 3 members' contributions to the part it audits (a quarter of the vector each), plus small frames.
        const fp32 = length * 4
        assert.ok((r.audit?.bytesReceived ?? 0) > 0.75 * fp32 && (r.audit?.bytesReceived ?? 0) < 0.76 * fp32, `audit received ${r.audit?.bytesReceived}`)
      }
      assert.deepEqual([...recomputed].sort(), [0, 1, 2, 3], 'every part was recomputed by its auditor')
      for (const s of services) assert.equal(s.excluded.size, 0)
    }
  })

  it('auditors recompute parts reduced by the job\'s checked aggregator (robust rule, update checks) to the same bits, a rejected member included', async () => {
    const length = 60_000
    const ids = await startGroup(4, () => ({ audit: { rate: 1 } }))
    // As a job builds it: fp16, trimmed mean, the norm check (member 3 sends 100x the others: rejected).
    const checked = jobAggregator(codecFor('fp16'), { rule: 'trimmed-mean', trim: 1, maxNormRatio: 5 })
    const vectors = ids.map((_id, i) => randomVector(length, 700 + i, i === 3 ? 100 : 1))
    const group = makeGroup({ job: 'checked', round: 1, members: ids, vectorLength: length })
    const results = await Promise.all(services.map(async (s, i) => await s.run({ group, vector: vectors[i], weight: 10, aggregator: checked })))
    for (const r of results) {
      assert.deepEqual(r.audit?.faults, [])
      assert.deepEqual(r.audit?.inconclusive, [])
      assert.deepEqual(r.dropped, [])
      assert.equal(sameBits(r.vector, results[0].vector), true, 'bit-identical')
      for (const p of r.parts) assert.deepEqual(decodeRejected(group.members, String(p.meta?.[REJECTED_META_KEY] ?? '')), [ids[3]], `part ${p.index} names the outlier`)
    }
    assert.equal(new Set(results.flatMap(r => r.audit?.recomputed ?? [])).size, 4, 'every part was recomputed')
  })

  it('with no part recomputed (rate 0) the audit phase costs only verdict frames', async () => {
    const length = 250_000
    const ids = await startGroup(4, () => ({ audit: { rate: 0 } }))
    const vectors = ids.map((_id, i) => randomVector(length, 300 + i))
    const group = makeGroup({ job: 'cheap', round: 1, members: ids, vectorLength: length })
    const results = await Promise.all(services.map(async (s, i) => await s.run({ group, vector: vectors[i], weight: i + 1, aggregator })))
    for (const r of results) {
      assert.deepEqual(r.audit?.faults, [])
      assert.deepEqual(r.audit?.recomputed, [])
      // 3 verdicts out and their 3 answers back, 3 verdicts in and 3 answers out: a small JSON header each, whatever the vector's size.
      const audit = (r.audit?.bytesSent ?? 0) + (r.audit?.bytesReceived ?? 0)
      assert.ok(audit > 12 * 200 && audit < 12 * 512, `audit ${audit} bytes`)
    }
  })
})

describe('reducer audits: who audits a part', () => {
  it('is never the member that reduced the part, is the same whoever asks, and moves with the group', () => {
    const members = ['a', 'b', 'c', 'd', 'e']
    const shifts = new Set<number>()
    for (let g = 0; g < 64; g++) {
      const hash = (g * 2654435761 >>> 0).toString(16).padStart(8, '0') + '0'.repeat(56)
      const shift = auditShift(hash, members.length)
      assert.ok(shift >= 1 && shift <= members.length - 1)
      shifts.add(shift)
      for (let part = 0; part < members.length; part++) {
        // Reduced by its own member, or by any other as a stand-in: the auditor is someone else.
        for (const reducedBy of members) assert.notEqual(auditorOf(members, part, reducedBy, shift), reducedBy)
      }
    }
    assert.equal(shifts.size, members.length - 1, 'every distance occurs')
    assert.equal(auditorOf(['solo'], 0, 'solo', 1), null)
    assert.equal(auditorOf(['a', 'b'], 0, 'a', 1), 'b')
    assert.equal(auditorOf(['a', 'b'], 0, 'b', 1), 'a')
  })
})

describe('reducer audits: frames', () => {
  const members = ['12D3KooWA1111111111111111111111111111111111111111111', '12D3KooWB2222222222222222222222222222222222222222222'].sort()
  const ctx: FrameContext = { job: 'j', round: 1, group: groupHash('j', 1, members, 10), members, offsets: [0, 5], lengths: [5, 5] }
  const verdict: VerdictHeader = { v: 1, type: 'verdict', job: 'j', round: 1, group: ctx.group, part: 0, offset: 0, elements: 5, reducer: members[0], audited: true, result: 'ab'.repeat(32), fault: false }

  it('a verdict round-trips, and one about a reducer outside the group, from an outsider, or with a malformed digest is refused', () => {
    assert.deepEqual(decodeFrameHeader(encodeFrameHeader(verdict).subarray(4)), verdict)
    validateFrameHeader(verdict, ctx, members[1])
    const outsider = '12D3KooWC3333333333333333333333333333333333333333333'
    assert.throws(() => { validateFrameHeader({ ...verdict, reducer: outsider }, ctx, members[1]) }, InvalidMessageError)
    assert.throws(() => { validateFrameHeader(verdict, ctx, outsider) }, InvalidMessageError)
    const badDigest = new TextEncoder().encode(JSON.stringify({ ...verdict, result: 'not-a-digest' }))
    assert.throws(() => decodeFrameHeader(badDigest), InvalidMessageError)
    const badWeight = new TextEncoder().encode(JSON.stringify({ ...verdict, type: 'audit-payload', weight: -1, reducer: undefined, audited: undefined, result: undefined, fault: undefined }))
    assert.throws(() => decodeFrameHeader(badWeight), InvalidMessageError)
  })
})
