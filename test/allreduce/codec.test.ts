import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import { ButterflyAllReduce } from '../../node/allreduce/butterfly.ts'
import { makeGroup } from '../../node/allreduce/group.ts'
import { plaintextAggregator } from '../../node/allreduce/combine.ts'
import type { VectorCodec } from '../../node/compression/codec.ts'
import { fp16Codec, int8Codec } from '../../node/compression/index.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { maxAbsDiff, randomVector, sameBits, startConnectedNodes, stopAll, weightedMeanReference } from './helpers.ts'

/**
 * Test-only int8 codec (absmax scale per vector): exercises the lossy path of the all-reduce. It is not
 * node/compression's codec; the last case runs those.
 */
const testInt8: VectorCodec = {
  id: 'int8',
  encode (v) {
    let max = 0
    for (const x of v) max = Math.max(max, Math.abs(x))
    const scale = max > 0 ? max / 127 : 1
    const out = new Uint8Array(4 + v.length)
    new DataView(out.buffer).setFloat32(0, scale, true)
    for (let i = 0; i < v.length; i++) out[4 + i] = Math.round(v[i] / scale) & 0xff
    return out
  },
  decode (b) {
    if (b.byteLength < 4) throw new InvalidMessageError('int8: too short')
    const scale = new DataView(b.buffer, b.byteOffset).getFloat32(0, true)
    const out = new Float32Array(b.byteLength - 4)
    for (let i = 0; i < out.length; i++) out[i] = ((b[4 + i] << 24) >> 24) * scale
    return out
  }
}

describe('all-reduce through a lossy codec', function () {
  this.timeout(60_000)
  let nodes: Array<Libp2p<any>> = []
  let services: ButterflyAllReduce[] = []
  before(async () => {
    nodes = await startConnectedNodes(4)
    // No part recomputed by an audit: the bytes counted below are the codec's.
    services = nodes.map(n => new ButterflyAllReduce({ host: n }, { timeouts: { floorMs: 1000 }, audit: { rate: 0 } }))
    await Promise.all(services.map(async s => { await s.start() }))
  })
  after(async () => {
    await Promise.all(services.map(async s => { await s.stop() }))
    await stopAll(nodes)
  })

  async function reduceWith (codec: VectorCodec, round: number): Promise<{ error: number, bound: number, bytesSent: number, identical: boolean }> {
    const length = 40_000
    const weights = [1, 2, 3, 4]
    const vectors = nodes.map((_n, i) => randomVector(length, 300 + i, 0.5))
    const group = makeGroup({ job: 'codec', round, members: nodes.map(n => n.peerId.toString()), vectorLength: length })
    const results = await Promise.all(services.map(async (s, i) => await s.run({ group, vector: vectors[i], weight: weights[i], aggregator: plaintextAggregator(codec) })))
    const reference = weightedMeanReference(vectors, weights)
    // Contributions are quantised once (≤ half a step of their own scale), the result once more.
    const step = 0.5 / 127
    return {
      error: Math.max(...results.map(r => maxAbsDiff(r.vector, reference))),
      bound: step / 2 + step / 2 + 1e-6,
      bytesSent: results[0].bytesSent,
      identical: results.every(r => sameBits(r.vector, results[0].vector))
    }
  }

  it('with an int8 codec, the average is within the codec error bound and ~4x smaller on the wire', async () => {
    const r = await reduceWith(testInt8, 1)
    assert.ok(r.error <= r.bound, `error ${r.error} above bound ${r.bound}`)
    assert.ok(r.error > 0)
    assert.equal(r.identical, true)
    assert.ok(r.bytesSent < 0.3 * 1.5 * 40_000 * 4, `sent ${r.bytesSent}`)
  })

  it("with node/compression's per-chunk int8 and fp16 codecs", async function () {
    let round = 10
    for (const codec of [fp16Codec(), int8Codec()]) {
      const r = await reduceWith(codec, round++)
      // fp16 rounds each value to 11 significant bits (values here are < 0.5), twice; int8 uses a per-chunk
      // scale no larger than the whole-vector scale, so the whole-vector bound holds.
      const bound = codec.id === 'fp16' ? 2 * 0.5 * 2 ** -11 + 1e-6 : r.bound
      assert.ok(r.error <= bound, `${codec.id}: error ${r.error} above bound ${bound}`)
      assert.ok(r.error > 0, `${codec.id}: lossy codec gave an exact result`)
      assert.equal(r.identical, true)
    }
  })
})
