/** The update checks inside the butterfly all-reduce on 127.0.0.1: what reducers reject reaches every member alike. */
import assert from 'node:assert/strict'
import type { Libp2p } from 'libp2p'
import { ButterflyAllReduce } from '../../node/allreduce/butterfly.ts'
import { makeGroup, partitionGroup } from '../../node/allreduce/group.ts'
import { plaintextAggregator } from '../../node/allreduce/combine.ts'
import { trimmedMean } from '../../node/allreduce/robust-rules.ts'
import { checkedAggregator, decodeRejected } from '../../node/allreduce/update-checks.ts'
import { rejectedMembers } from '../../node/round/allreduce-averager.ts'
import { identityCodec, randomVector, sameBits, startConnectedNodes, stopAll } from './helpers.ts'

describe('update checks in the butterfly all-reduce on 127.0.0.1', function () {
  this.timeout(60_000)
  let nodes: Array<Libp2p<any>> = []
  let services: ButterflyAllReduce[] = []
  afterEach(async () => {
    await Promise.all(services.map(async s => { try { await s.stop() } catch {} }))
    await stopAll(nodes)
  })

  it('a payload that does not decode is refused on arrival and named, a NaN update is rejected, the round completes, and every member gets the same bits and verdict', async () => {
    nodes = await startConnectedNodes(5)
    services = nodes.map(n => new ButterflyAllReduce({ host: n }, { timeouts: { floorMs: 1000 } }))
    await Promise.all(services.map(async s => { await s.start() }))
    const ids = nodes.map(n => n.peerId.toString())
    const length = 50_000
    const group = makeGroup({ job: 'job-c', round: 2, members: ids, vectorLength: length })
    const parts = partitionGroup(group)
    const aggregator = checkedAggregator(plaintextAggregator(identityCodec, trimmedMean(1)), { maxNormRatio: 5 })
    const vectors = nodes.map((_n, i) => randomVector(length, i + 1))
    // Member `garbled` sends part 0 a payload one float short (its other parts are fine); member `nan` has a NaN in part 1.
    const garbled = group.members[3]
    const nan = group.members[4]
    vectors[ids.indexOf(nan)][parts.offsets[1] + 5] = NaN
    const runs = services.map(async (s, i) => {
      const vector = vectors[i]
      const payloads = ids[i] === garbled
        ? group.members.map((_m, k) => identityCodec.encode(vector.subarray(parts.offsets[k], parts.offsets[k] + parts.lengths[k] - (k === 0 ? 1 : 0))))
        : undefined
      return await s.run({ group, vector, payloads, weight: 100, aggregator })
    })
    const settled = await Promise.allSettled(runs)
    const honest = ids.map((id, i) => ({ id, i })).filter(({ id }) => id !== garbled)
    const results = honest.map(({ i }) => { const r = settled[i]; assert.equal(r.status, 'fulfilled'); return (r as PromiseFulfilledResult<Awaited<typeof runs[number]>>).value })
    for (const r of results) {
      assert.equal(r.complete, true)
      assert.ok(sameBits(r.vector, results[0].vector), 'bit-identical')
      assert.deepEqual(decodeRejected(group.members, r.parts[0].meta?.rejected as string), [garbled])
      assert.equal(r.parts[0].meta?.['rejected.shape'], 1)
      assert.deepEqual(decodeRejected(group.members, r.parts[1].meta?.rejected as string), [nan])
      assert.equal(r.parts[1].meta?.['rejected.non-finite'], 1)
      assert.deepEqual([...rejectedMembers(group, r.parts).keys()].sort(), [garbled, nan].sort())
      assert.ok(!r.dropped.includes(nan))
    }
    // Part 0 is the trimmed mean of the four members whose part decoded; part 1 of the four without a NaN.
    const slice = (who: string[], k: number): Array<{ peer: string, weight: number, values: Float32Array }> => who.map(p => ({ peer: p, weight: 100, values: vectors[ids.indexOf(p)].subarray(parts.offsets[k], parts.offsets[k] + parts.lengths[k]) }))
    for (const [k, out] of [[0, garbled], [1, nan]] as const) {
      const expected = trimmedMean(1).combine(slice(group.members.filter(m => m !== out), k)).values
      assert.ok(sameBits(results[0].vector.subarray(parts.offsets[k], parts.offsets[k] + parts.lengths[k]), expected), `part ${k}`)
    }
  })
})
