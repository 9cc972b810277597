import assert from 'node:assert/strict'
import { partitionVector, speedShares } from '../../node/allreduce/partition.ts'
import { weightedMean, plaintextAggregator, COMBINE_BLOCK, type PartContribution } from '../../node/allreduce/combine.ts'
import { PeerSpeedTracker } from '../../node/allreduce/timeouts.ts'
import { makeGroup, partitionGroup } from '../../node/allreduce/group.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { identityCodec, randomVector, sameBits } from './helpers.ts'

describe('all-reduce building blocks', () => {
  describe('partitionVector', () => {
    it('covers the vector with contiguous parts that differ by at most one', () => {
      for (const [len, n] of [[10, 3], [100_003, 4], [2, 5], [0, 2], [7, 1]]) {
        const { offsets, lengths } = partitionVector(len, n)
        assert.equal(lengths.reduce((a, b) => a + b, 0), len)
        assert.equal(offsets[0], 0)
        for (let i = 1; i < n; i++) assert.equal(offsets[i], offsets[i - 1] + lengths[i - 1])
        assert.ok(Math.max(...lengths) - Math.min(...lengths) <= 1)
      }
    })
    it('splits by shares deterministically, clamping speed hints', () => {
      const p = partitionVector(1000, [1, 3])
      assert.deepEqual(p.lengths, [250, 750])
      assert.deepEqual(partitionVector(1000, [1, 3]), p)
      assert.deepEqual(speedShares([1, 1, 1000]), [1, 1, 4])
      const g = makeGroup({ job: 'j', round: 0, members: ['b', 'a'], vectorLength: 10, speeds: new Map([['a', 1], ['b', 4]]) })
      assert.deepEqual(g.members, ['a', 'b'])
      assert.deepEqual(partitionGroup(g, true).lengths, [2, 8])
      assert.deepEqual(partitionGroup(g).lengths, [5, 5])
    })
  })

  describe('weightedMean', () => {
    const contributions: PartContribution[] = ['p3', 'p1', 'p4', 'p2'].map((peer, i) => ({ peer, weight: [3, 1, 4, 1.5][i], values: randomVector(4097, i + 7, 1e3) }))
    it('is bit-identical whatever the arrival order', () => {
      const first = weightedMean.combine(contributions).values
      for (const order of [[3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]]) {
        assert.equal(sameBits(weightedMean.combine(order.map(i => contributions[i])).values, first), true)
      }
    })
    it('reports the total weight; zero weight gives zeros', () => {
      assert.equal(weightedMean.combine(contributions).meta?.totalWeight, 9.5)
      const zero = weightedMean.combine(contributions.map(c => ({ ...c, weight: 0 })))
      assert.ok(zero.values.every(v => v === 0))
    })
    it('refuses contributions of different lengths', () => {
      assert.throws(() => weightedMean.combine([contributions[0], { ...contributions[1], values: new Float32Array(3) }]), InvalidMessageError)
    })
    it('the plaintext aggregator reduces in blocks (yielding between them) with the same bits as one pass', async () => {
      const n = COMBINE_BLOCK + 123
      const cs = ['b', 'a', 'c'].map((peer, i) => ({ peer, weight: i + 2, value: randomVector(n, 40 + i) }))
      const reduced = await plaintextAggregator(identityCodec).reduce(cs, n)
      const direct = weightedMean.combine(cs.map(c => ({ peer: c.peer, weight: c.weight, values: c.value }))).values
      assert.equal(sameBits(identityCodec.decode(reduced.payload), direct), true)
      assert.equal(reduced.meta?.totalWeight, 9)
    })
    it('the plaintext aggregator refuses payloads that decode to the wrong length', () => {
      const agg = plaintextAggregator(identityCodec)
      assert.throws(() => agg.decodeContribution(new Uint8Array(12), 4), InvalidMessageError)
      assert.equal(agg.decodeContribution(new Uint8Array(16), 4).length, 4)
    })
  })

  describe('PeerSpeedTracker', () => {
    it('derives timeouts from measured speed, with a floor, a multiplier and an EWMA', () => {
      const t = new PeerSpeedTracker({ floorMs: 100, multiplier: 3, defaultBps: 1e6, defaultLatencyMs: 0, alpha: 0.5, minSampleBytes: 1000 })
      assert.equal(t.timeoutMs('x', 1e6), 100 + 3 * 1000) // default speed before any measurement
      t.hint('x', 1e7)
      assert.equal(t.timeoutMs('x', 1e6), 100 + 3 * 100) // announced speed
      t.observeTransfer('x', 1e6, 500) // 2 MB/s measured
      assert.equal(t.bps('x'), 2e6)
      t.observeTransfer('x', 1e6, 250) // 4 MB/s: EWMA halfway
      assert.equal(t.bps('x'), 3e6)
      t.observeTransfer('x', 10, 1) // too small to tell
      assert.equal(t.bps('x'), 3e6)
      assert.equal(t.timeoutMs('fast', 0), 100)
      assert.equal(t.slowestTimeoutMs(['x', 'fast'], 3e6), 100 + 3 * 3000)
      // Stall windows: silence, not size; they widen for a peer that showed long gaps in exchanges that completed.
      t.observeLatency('x', 10)
      assert.equal(t.stallMs('x'), 100 + 3 * 10)
      t.observeGap('x', 400)
      assert.equal(t.stallMs('x'), 100 + 3 * 400)
    })
  })
})

describe('ButterflyAllReduce without the network', () => {
  it('a group of one averages to its own (codec round-tripped) vector', async () => {
    const { generateKeyPair } = await import('@libp2p/crypto/keys')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const { ButterflyAllReduce } = await import('../../node/allreduce/butterfly.ts')
    const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const host = {
      peerId,
      handle: async () => {},
      unhandle: async () => {},
      dialProtocol: async () => { throw new Error('no network in this test') }
    }
    const service = new ButterflyAllReduce({ host })
    await service.start()
    const vector = randomVector(1001, 9)
    const group = makeGroup({ job: 'solo', round: 0, members: [peerId.toString()], vectorLength: vector.length })
    const r = await service.run({ group, vector, weight: 12, aggregator: plaintextAggregator(identityCodec) })
    assert.equal(sameBits(r.vector, vector), true)
    assert.deepEqual(r.contributors, [{ peer: peerId.toString(), weight: 12, elements: 1001, fraction: 1 }])
    assert.equal(r.bytesSent, 0)
    await assert.rejects(service.run({ group, vector: vector.subarray(1), weight: 1, aggregator: plaintextAggregator(identityCodec) }), RangeError)
    await service.stop()
  })
})

describe('the butterfly round stage machine', () => {
  it('moves forward only, fails from any running stage, and nothing leaves closed or failed', async () => {
    const { RoundStage, RoundStageMachine } = await import('../../node/allreduce/round-stage.ts')
    const seen: string[] = []
    const m = new RoundStageMachine((from, to) => { seen.push(`${from}>${to}`) })
    assert.equal(m.stage, RoundStage.Collecting)
    assert.equal(m.running, true)
    m.advance(RoundStage.AwaitingResults) // parts complete in any order: a stage may be skipped
    m.advance(RoundStage.Reducing) // but never gone back to
    assert.equal(m.stage, RoundStage.AwaitingResults)
    m.advance(RoundStage.Done)
    assert.equal(m.running, false)
    m.advance(RoundStage.Failed) // a round that returned its result did not fail
    assert.equal(m.stage, RoundStage.Done)
    m.advance(RoundStage.Closed)
    assert.equal(m.over, true)
    m.advance(RoundStage.Collecting)
    assert.deepEqual(seen, ['collecting>awaiting-results', 'awaiting-results>done', 'done>closed'])
    const failing = new RoundStageMachine()
    failing.advance(RoundStage.Reducing)
    failing.advance(RoundStage.Failed)
    failing.advance(RoundStage.Closed)
    assert.equal(failing.stage, RoundStage.Failed)
    assert.equal(failing.over, true)
  })
})

describe('ButterflyAllReduce with the encode step\'s payloads, without the network', () => {
  async function soloService (dialProtocol: (...args: any[]) => Promise<any> = async () => { throw new Error('no network in this test') }) {
    const { generateKeyPair } = await import('@libp2p/crypto/keys')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const { ButterflyAllReduce } = await import('../../node/allreduce/butterfly.ts')
    const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const service = new ButterflyAllReduce({ host: { peerId, handle: async () => {}, unhandle: async () => {}, dialProtocol } })
    await service.start()
    return { peerId: peerId.toString(), service }
  }

  it('sends the payloads it is given as they are: no part is encoded a second time', async () => {
    const { peerId, service } = await soloService()
    let encodes = 0
    const counting = { ...identityCodec, encode: (v: Float32Array) => { encodes++; return identityCodec.encode(v) } }
    const vector = randomVector(501, 3)
    // The payload says something else than the vector: the result must come from the payload.
    const sent = randomVector(501, 4)
    const group = makeGroup({ job: 'solo', round: 1, members: [peerId], vectorLength: vector.length })
    const r = await service.run({ group, vector, payloads: [identityCodec.encode(sent)], weight: 3, aggregator: plaintextAggregator(counting) })
    assert.equal(sameBits(r.vector, sent), true)
    assert.equal(encodes, 1, 'only the part result was encoded (the contribution came encoded)')
    await assert.rejects(service.run({ group: { ...group, round: 2 }, vector, payloads: [], weight: 3, aggregator: plaintextAggregator(counting) }), RangeError)
    await service.stop()
  })

  it('a round that fails says the stage it had reached', async () => {
    const { AllReduceRoundError, RoundStage } = await import('../../node/allreduce/butterfly.ts')
    const { generateKeyPair } = await import('@libp2p/crypto/keys')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    // The other member's reducer never answers: dials hang until the round's signal aborts them.
    const hang = async (_peer: unknown, _protocol: string, options: { signal: AbortSignal }): Promise<never> => await new Promise((_resolve, reject) => {
      options.signal.addEventListener('abort', () => { reject(options.signal.reason) }, { once: true })
    })
    const { peerId, service } = await soloService(hang)
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const group = makeGroup({ job: 'pair', round: 1, members: [peerId, other], vectorLength: 100 })
    const controller = new AbortController()
    setTimeout(() => { controller.abort(new Error('round cancelled')) }, 50)
    const err = await service.run({ group, vector: randomVector(100, 1), weight: 1, aggregator: plaintextAggregator(identityCodec), signal: controller.signal }).catch(e => e)
    assert.ok(err instanceof AllReduceRoundError, String(err))
    assert.equal(err.stage, RoundStage.Collecting)
    assert.match(err.message, /failed while collecting: round cancelled/)
    await service.stop()
  })
})
