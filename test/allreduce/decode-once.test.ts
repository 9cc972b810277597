/**
 * The all-reduce's fast path (decoded values from the encode step, results decoded straight into place,
 * combineInto, encodeDecoded) gives the same bits as the straightforward path, and decodes each received
 * part exactly once.
 */
import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import { ButterflyAllReduce } from '../../node/allreduce/butterfly.ts'
import { makeGroup, partitionGroup } from '../../node/allreduce/group.ts'
import { inCanonicalOrder, plaintextAggregator, weightedMean, type PartAggregator, type PartContribution } from '../../node/allreduce/combine.ts'
import { errorFeedbackEncoder, fp16Codec, int8Codec, type VectorCodec } from '../../node/compression/index.ts'
import { maxAbsDiff, randomVector, sameBits, startConnectedNodes, stopAll, weightedMeanReference } from './helpers.ts'

/** The weighted mean as first written: one float64 accumulator over the whole part, canonical order. */
function meanReference (contributions: PartContribution[]): Float32Array {
  const n = contributions[0].values.length
  const acc = new Float64Array(n)
  let total = 0
  for (const c of inCanonicalOrder(contributions)) {
    if (c.weight === 0) continue
    total += c.weight
    for (let j = 0; j < n; j++) acc[j] += c.weight * c.values[j]
  }
  const out = new Float32Array(n)
  if (total > 0) for (let j = 0; j < n; j++) out[j] = acc[j] / total
  return out
}

/** A codec that counts its decodes; `lean` hides the optional fast methods (the straightforward path). */
function counting (inner: VectorCodec, lean = false): VectorCodec & { decodes: number } {
  const c = {
    id: inner.id,
    decodes: 0,
    encode: (v: Float32Array) => inner.encode(v),
    decode: (b: Uint8Array) => { c.decodes++; return inner.decode(b) },
    ...(lean
      ? {}
      : {
          decodeInto: (b: Uint8Array, out: Float32Array) => { c.decodes++; inner.decodeInto!(b, out) },
          encodeDecoded: (v: Float32Array, d: Float32Array) => inner.encodeDecoded!(v, d)
        })
  }
  return c
}

/** plaintextAggregator without its optional fast paths: contributions and results decoded into new arrays, reduced into a new one. */
function leanAggregator (codec: VectorCodec): PartAggregator<Float32Array> {
  const { decodeContributionInto: _a, decodeResultInto: _b, fromDecoded: _c, ...rest } = plaintextAggregator(codec)
  return { ...rest, reduce: async (contributions, elements) => await rest.reduce(contributions, elements) }
}

describe('all-reduce decode-once fast path', function () {
  this.timeout(60_000)

  it('weightedMean.combineInto equals one float64 accumulator over the whole part, bit for bit', () => {
    const n = 40_000 // more than one block of the blocked accumulator
    const contributions: PartContribution[] = [3, 1, 0, 2.5, 0.5].map((weight, k) => ({ peer: `peer-${'edcba'[k]}`, weight, values: randomVector(n, 40 + k, 0.01) }))
    assert.equal(contributions.length, 5)
    contributions[0].values[5] = -0; contributions[1].values[5] = -0; contributions[3].values[5] = -0; contributions[4].values[5] = -0
    const expected = meanReference(contributions)
    const out = new Float32Array(n).fill(7)
    assert.deepEqual(weightedMean.combineInto!(contributions, out), { totalWeight: 7 })
    assert.ok(sameBits(out, expected))
    assert.ok(sameBits(weightedMean.combine([...contributions].reverse()).values, expected))
    assert.equal(Object.is(out[5], 0), true, '+0, as the accumulator that starts at 0 gives')
    // One, two and three contributions take their own loops: the same bits; also in place, over one of them.
    for (const k of [1, 2, 3, 4]) {
      const some = contributions.filter(c => c.weight !== 0).slice(0, k)
      const expected = meanReference(some)
      assert.ok(sameBits(weightedMean.combine(some).values, expected), `${k} contribution(s)`)
      const copies = some.map(c => ({ ...c, values: c.values.slice() }))
      const inPlace = copies[k - 1].values
      weightedMean.combineInto!(copies, inPlace)
      assert.ok(sameBits(inPlace, expected), `${k} contribution(s), in place`)
    }
    const none = new Float32Array(3).fill(7)
    weightedMean.combineInto!([{ peer: 'a', weight: 0, values: new Float32Array(3) }], none)
    assert.deepEqual(none, new Float32Array(3))
  })

  it('plaintextAggregator reduces into the given place and returns it as what the payload decodes to', async () => {
    const agg = plaintextAggregator(fp16Codec())
    const n = 5000
    const contributions = [1, 2].map(k => ({ peer: `p${k}`, weight: k, value: randomVector(n, 90 + k, 0.1) }))
    const into = new Float32Array(n)
    const reduced = await agg.reduce(contributions, n, into)
    assert.equal(reduced.decoded, into)
    assert.ok(sameBits(into, agg.decodeResult(reduced.payload, n)))
    const elsewhere = await agg.reduce(contributions, n)
    assert.deepEqual(elsewhere.payload, reduced.payload)
  })

  describe('over real nodes', () => {
    let nodes: Array<Libp2p<any>> = []
    let services: ButterflyAllReduce[] = []
    before(async () => {
      nodes = await startConnectedNodes(3)
      // No part recomputed by an audit (it decodes the contributions it fetches): the decodes counted are the round's.
      services = nodes.map(n => new ButterflyAllReduce({ host: n }, { timeouts: { floorMs: 2000 }, audit: { rate: 0 } }))
      await Promise.all(services.map(async s => { await s.start() }))
    })
    after(async () => {
      await Promise.all(services.map(async s => { await s.stop() }))
      await stopAll(nodes)
    })

    let round = 0
    for (const make of [() => fp16Codec(), () => int8Codec({ chunkSize: 256 })]) {
      it(`${make().id}: decodes each received part once and matches the straightforward path bit for bit`, async () => {
        const length = 30_001
        const weights = [1, 2, 3]
        const vectors = nodes.map((_n, i) => randomVector(length, 70 + i, 0.5))
        const members = nodes.map(n => n.peerId.toString())
        const run = async (round: number, lean: boolean): Promise<{ vectors: Float32Array[], decodes: number[] }> => {
          const group = makeGroup({ job: 'decode-once', round, members, vectorLength: length })
          const codecs = nodes.map(() => counting(make(), lean))
          const results = await Promise.all(services.map(async (s, i) => {
            const encoded = errorFeedbackEncoder(codecs[i]).encode(vectors[i], partitionGroup(group))
            return await s.run({ group, vector: encoded.values, payloads: encoded.payloads, decoded: lean ? undefined : encoded.decoded, weight: weights[i], aggregator: lean ? leanAggregator(codecs[i]) : plaintextAggregator(codecs[i]) })
          }))
          return { vectors: results.map(r => r.vector), decodes: codecs.map(c => c.decodes) }
        }
        const fast = await run(++round, false)
        const plain = await run(++round, true)
        // Each peer decodes the 2 contributions it receives and the 2 results it receives, nothing else.
        assert.deepEqual(fast.decodes, [4, 4, 4])
        // The straightforward path also decodes its own contribution and its own result, and each encoded part in the encode step.
        assert.ok(plain.decodes.every(d => d > 4), `plain path decodes ${plain.decodes.join(',')}`)
        for (let i = 0; i < 3; i++) {
          assert.ok(sameBits(fast.vectors[i], fast.vectors[0]), `peer ${i} differs`)
          assert.ok(sameBits(fast.vectors[i], plain.vectors[i]), `peer ${i}: fast and plain paths differ`)
        }
        assert.ok(maxAbsDiff(fast.vectors[0], weightedMeanReference(vectors, weights)) < 0.01)
      })
    }
  })
})
