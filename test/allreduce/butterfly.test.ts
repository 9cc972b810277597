import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import { ButterflyAllReduce } from '../../node/allreduce/butterfly.ts'
import { makeGroup } from '../../node/allreduce/group.ts'
import { plaintextAggregator, weightedMean } from '../../node/allreduce/combine.ts'
import { ALLREDUCE_PROTOCOL } from '../../protocol/allreduce.ts'
import type { AllReduceHost } from '../../node/allreduce/butterfly.ts'
import { identityCodec, maxAbsDiff, randomVector, sameBits, startConnectedNodes, stopAll, weightedMeanReference } from './helpers.ts'

const FAST = { floorMs: 1000, multiplier: 2, defaultBps: 50 * 1024 * 1024, defaultLatencyMs: 20, minSampleBytes: 8 * 1024 }
/** Verdicts are exchanged but no part is recomputed: the byte counts below are the butterfly's own (audit costs: audit.test.ts). */
const NO_RECOMPUTE = { rate: 0 }

describe('butterfly all-reduce on 127.0.0.1', function () {
  this.timeout(60_000)
  let nodes: Array<Libp2p<any>> = []
  let services: ButterflyAllReduce[] = []

  beforeEach(async () => {
    nodes = await startConnectedNodes(4)
    services = nodes.map(n => new ButterflyAllReduce({ host: n }, { timeouts: FAST, audit: NO_RECOMPUTE }))
    await Promise.all(services.map(async s => { await s.start() }))
  })

  afterEach(async () => {
    await Promise.all(services.map(async s => { try { await s.stop() } catch {} }))
    await stopAll(nodes)
  })

  const ids = (): string[] => nodes.map(n => n.peerId.toString())

  it('4 peers get the weighted mean, bit-identical everywhere', async () => {
    const length = 1_000_003
    const weights = [1, 3, 17, 250]
    const vectors = nodes.map((_n, i) => randomVector(length, i + 1, 10))
    const group = makeGroup({ job: 'job-a', round: 7, members: ids(), vectorLength: length })
    const aggregator = plaintextAggregator(identityCodec, weightedMean)
    const results = await Promise.all(services.map(async (s, i) => await s.run({ group, vector: vectors[i], weight: weights[i], aggregator })))
    const reference = weightedMeanReference(vectors, weights)
    for (const r of results) {
      assert.equal(r.complete, true)
      assert.deepEqual(r.dropped, [])
      assert.deepEqual(r.standIns, [])
      assert.ok(maxAbsDiff(r.vector, reference) < 1e-5, `max error ${maxAbsDiff(r.vector, reference)}`)
      assert.equal(sameBits(r.vector, results[0].vector), true, 'bit-identical')
      assert.deepEqual(r.contributors.map(c => [c.peer, c.weight, c.fraction]), group.members.map(m => [m, weights[ids().indexOf(m)], 1]))
      assert.equal(r.parts.every(p => p.contributors.length === 4 && !p.standIn), true)
      // Each peer uploads its 3 foreign parts and the 3 results of its own part: about 2·(N-1)/N of the vector.
      const fp32 = length * 4
      assert.ok(r.bytesSent > 1.4 * fp32 && r.bytesSent < 1.6 * fp32, `sent ${r.bytesSent} of ${fp32}`)
    }
    // Every peer measured the others' throughput: the next round's timeouts start from it.
    assert.ok(services[0].speeds.snapshot().filter(s => s.samples > 0).length >= 3)
  })

  it('contributions that arrive before a member has begun the round wait for it (paused), then count', async () => {
    const length = 200_000
    const weights = [5, 6, 7, 8]
    const vectors = nodes.map((_n, i) => randomVector(length, 600 + i))
    const group = makeGroup({ job: 'job-a', round: 11, members: ids(), vectorLength: length })
    const aggregator = plaintextAggregator(identityCodec)
    const early = services.slice(0, 3).map(async (s, i) => await s.run({ group, vector: vectors[i], weight: weights[i], aggregator }))
    await new Promise(resolve => setTimeout(resolve, 300))
    const late = services[3].run({ group, vector: vectors[3], weight: weights[3], aggregator })
    const results = await Promise.all([...early, late])
    const reference = weightedMeanReference(vectors, weights)
    for (const r of results) {
      assert.deepEqual(r.dropped, [])
      assert.ok(maxAbsDiff(r.vector, reference) < 1e-5)
      assert.equal(sameBits(r.vector, results[0].vector), true, 'bit-identical')
    }
  })

  it('a round aborted through its signal rejects, and answers its waiting streams', async () => {
    const length = 1000
    const group = makeGroup({ job: 'job-a', round: 12, members: ids(), vectorLength: length })
    const controller = new AbortController()
    // Only two members run: the others never answer, so the round would wait out its timeouts.
    const runs = [0, 1].map(async i => await services[i].run({ group, vector: randomVector(length, i), weight: 1, aggregator: plaintextAggregator(identityCodec), signal: controller.signal }))
    setTimeout(() => { controller.abort(new Error('round cancelled')) }, 100)
    for (const r of runs) await assert.rejects(r, /round cancelled/)
  })

  it('a crashed member is dropped and its part is reduced by a stand-in', async () => {
    const length = 20_000
    const weights = [2, 5, 11, 3]
    const vectors = nodes.map((_n, i) => randomVector(length, 100 + i))
    const group = makeGroup({ job: 'job-a', round: 8, members: ids(), vectorLength: length })
    const deadIndex = ids().indexOf(group.members[1])
    await services[deadIndex].stop()
    await nodes[deadIndex].stop()
    const alive = [0, 1, 2, 3].filter(i => i !== deadIndex)
    const aggregator = plaintextAggregator(identityCodec)
    const results = await Promise.all(alive.map(async i => await services[i].run({ group, vector: vectors[i], weight: weights[i], aggregator })))
    const reference = weightedMeanReference(alive.map(i => vectors[i]), alive.map(i => weights[i]))
    const dead = ids()[deadIndex]
    for (const r of results) {
      assert.deepEqual(r.dropped, [dead])
      assert.equal(r.complete, true)
      assert.equal(r.parts[1].standIn, true)
      assert.equal(r.parts[1].reducedBy, group.members[2])
      assert.equal(r.contributors.some(c => c.peer === dead), false)
      assert.ok(maxAbsDiff(r.vector, reference) < 1e-5, `max error ${maxAbsDiff(r.vector, reference)}`)
      assert.equal(sameBits(r.vector, results[0].vector), true, 'bit-identical')
    }
  })

  it('a member whose handler hangs is dropped after an adaptive timeout; survivors average without it', async () => {
    const length = 20_000
    const weights = [4, 1, 9, 6]
    const vectors = nodes.map((_n, i) => randomVector(length, 200 + i))
    const group = makeGroup({ job: 'job-a', round: 9, members: ids(), vectorLength: length })
    const stalledIndex = ids().indexOf(group.members[3])
    await services[stalledIndex].stop()
    await nodes[stalledIndex].handle(ALLREDUCE_PROTOCOL, () => { /* accepts streams and never answers */ })
    const alive = [0, 1, 2, 3].filter(i => i !== stalledIndex)
    const results = await Promise.all(alive.map(async i => await services[i].run({ group, vector: vectors[i], weight: weights[i], aggregator: plaintextAggregator(identityCodec) })))
    const reference = weightedMeanReference(alive.map(i => vectors[i]), alive.map(i => weights[i]))
    const stalled = ids()[stalledIndex]
    for (const r of results) {
      assert.deepEqual(r.dropped, [stalled])
      assert.equal(r.complete, true)
      assert.equal(r.parts[3].standIn, true)
      assert.equal(r.parts[3].reducedBy, group.members[0])
      assert.ok(maxAbsDiff(r.vector, reference) < 1e-5, `max error ${maxAbsDiff(r.vector, reference)}`)
      assert.equal(sameBits(r.vector, results[0].vector), true, 'bit-identical')
    }
  })

  it('a member that crashes mid-round (on its first inbound stream) is dropped; each part is the mean of its reported contributors', async () => {
    const length = 60_000
    const weights = [3, 7, 2, 5]
    const vectors = nodes.map((_n, i) => randomVector(length, 400 + i))
    const group = makeGroup({ job: 'job-a', round: 10, members: ids(), vectorLength: length })
    const crashIndex = ids().indexOf(group.members[2])
    // The crashing member's host stops its whole node the moment a contribution reaches it.
    await services[crashIndex].stop()
    const node = nodes[crashIndex]
    const crashing: AllReduceHost = {
      peerId: node.peerId,
      handle: async (protocol, handler, options) => {
        await node.handle(protocol, (stream, connection) => { void node.stop(); handler(stream, connection) }, options)
      },
      unhandle: async (protocol) => { await node.unhandle(protocol) },
      dialProtocol: async (peer, protocol, options) => await node.dialProtocol(peer, protocol, options)
    }
    services[crashIndex] = new ButterflyAllReduce({ host: crashing }, { timeouts: FAST, audit: NO_RECOMPUTE })
    await services[crashIndex].start()
    const aggregator = plaintextAggregator(identityCodec)
    const runs = services.map(async (s, i) => await s.run({ group, vector: vectors[i], weight: weights[i], aggregator }))
    const alive = [0, 1, 2, 3].filter(i => i !== crashIndex)
    const results = await Promise.all(alive.map(async i => await runs[i]))
    await runs[crashIndex].catch(() => {})
    const crashed = ids()[crashIndex]
    for (const r of results) {
      assert.equal(r.complete, true)
      assert.equal(r.dropped.includes(crashed), true)
      assert.equal(r.parts[2].standIn, true)
      assert.equal(r.parts[2].contributors.some(c => c.peer === crashed), false)
      for (const part of r.parts) {
        const idx = part.contributors.map(c => ids().indexOf(c.peer))
        const ref = weightedMeanReference(idx.map(i => vectors[i].subarray(part.offset, part.offset + part.elements)), idx.map(i => weights[i]))
        assert.ok(maxAbsDiff(r.vector.subarray(part.offset, part.offset + part.elements), ref) < 1e-5, `part ${part.index}`)
      }
      assert.equal(sameBits(r.vector, results[0].vector), true, 'bit-identical')
    }
  })
})

describe('butterfly all-reduce: two adjacent members crash', function () {
  this.timeout(60_000)
  let nodes: Array<Libp2p<any>> = []
  let services: ButterflyAllReduce[] = []
  after(async () => {
    await Promise.all(services.map(async s => { try { await s.stop() } catch {} }))
    await stopAll(nodes)
  })

  it('a part whose reducer and first stand-in are both gone is reduced by the next member in the ring', async () => {
    nodes = await startConnectedNodes(5)
    services = nodes.map(n => new ButterflyAllReduce({ host: n }, { timeouts: FAST }))
    await Promise.all(services.map(async s => { await s.start() }))
    const ids = nodes.map(n => n.peerId.toString())
    const length = 10_000
    const weights = [1, 2, 3, 4, 5]
    const vectors = nodes.map((_n, i) => randomVector(length, 500 + i))
    const group = makeGroup({ job: 'job-b', round: 1, members: ids, vectorLength: length })
    const dead = [group.members[1], group.members[2]].map(m => ids.indexOf(m))
    for (const i of dead) { await services[i].stop(); await nodes[i].stop() }
    const alive = [0, 1, 2, 3, 4].filter(i => !dead.includes(i))
    const results = await Promise.all(alive.map(async i => await services[i].run({ group, vector: vectors[i], weight: weights[i], aggregator: plaintextAggregator(identityCodec) })))
    const reference = weightedMeanReference(alive.map(i => vectors[i]), alive.map(i => weights[i]))
    for (const r of results) {
      assert.deepEqual([...r.dropped].sort(), dead.map(i => ids[i]).sort())
      assert.equal(r.complete, true)
      assert.equal(r.parts[1].reducedBy, group.members[3])
      assert.equal(r.parts[2].reducedBy, group.members[3])
      assert.ok(maxAbsDiff(r.vector, reference) < 1e-5, `max error ${maxAbsDiff(r.vector, reference)}`)
      assert.equal(sameBits(r.vector, results[0].vector), true, 'bit-identical')
    }
  })
})

describe('butterfly all-reduce: slow is not stalled', function () {
  this.timeout(60_000)
  let nodes: Array<Libp2p<any>> = []
  let services: ButterflyAllReduce[] = []
  after(async () => {
    await Promise.all(services.map(async s => { try { await s.stop() } catch {} }))
    await stopAll(nodes)
  })

  it('a contributor still uploading past the collection deadline is waited for, and heartbeats keep its reducer alive', async () => {
    nodes = await startConnectedNodes(2)
    // Deadlines that assume an infinitely fast network: only progress keeps the round together.
    // (An 800 ms floor rather than less: in a long test run a garbage-collection pause alone can pass 300 ms.)
    const policy = { floorMs: 800, multiplier: 1, defaultBps: 1e12, defaultLatencyMs: 1 }
    const slow = nodes[1]
    // The slow member's streams take one 1 MiB slice every 400 ms: its 4 MiB part takes about 1.6 s.
    const throttled: AllReduceHost = {
      peerId: slow.peerId,
      handle: async (protocol, handler, options) => { await slow.handle(protocol, handler, options) },
      unhandle: async (protocol) => { await slow.unhandle(protocol) },
      dialProtocol: async (peer, protocol, options) => {
        const stream = await slow.dialProtocol(peer, protocol, options)
        return new Proxy(stream, {
          get (target, prop) {
            if (prop === 'send') return (data: Uint8Array) => { target.send(data); return false }
            if (prop === 'onDrain') return async () => { await new Promise(resolve => setTimeout(resolve, 400)) }
            const value = Reflect.get(target, prop)
            return typeof value === 'function' ? value.bind(target) : value
          }
        })
      }
    }
    const logger = (who: string) => ({ debug: (o: object, m?: string) => { if (process.env.DBG != null) console.log(Date.now() % 100000, who, m, JSON.stringify(o)) } })
    services = [new ButterflyAllReduce({ host: nodes[0], logger: logger('fast') }, { timeouts: policy }), new ButterflyAllReduce({ host: throttled, logger: logger('slow') }, { timeouts: policy })]
    await Promise.all(services.map(async s => { await s.start() }))
    const length = 2_000_000
    const vectors = [randomVector(length, 700), randomVector(length, 701)]
    const group = makeGroup({ job: 'slow', round: 1, members: nodes.map(n => n.peerId.toString()), vectorLength: length })
    const started = Date.now()
    const results = await Promise.all(services.map(async (s, i) => await s.run({ group, vector: vectors[i], weight: i + 1, aggregator: plaintextAggregator(identityCodec) })))
    assert.ok(Date.now() - started > 1200, 'the upload was throttled past the deadline')
    const reference = weightedMeanReference(vectors, [1, 2])
    for (const r of results) {
      assert.deepEqual(r.dropped, [])
      assert.deepEqual(r.standIns, [])
      assert.ok(maxAbsDiff(r.vector, reference) < 1e-5)
      assert.equal(sameBits(r.vector, results[0].vector), true)
    }
  })
})
