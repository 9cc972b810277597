import assert from 'node:assert/strict'
import { plaintextAggregator, weightedMean, type WireContribution } from '../../node/allreduce/combine.ts'
import { jobAggregator } from '../../node/allreduce/aggregation.ts'
import { trimmedMean } from '../../node/allreduce/robust-rules.ts'
import { checkContributions, checkedAggregator, decodeRejected, encodeRejected, MIN_NORM_CHECK_CONTRIBUTIONS } from '../../node/allreduce/update-checks.ts'
import { AllReduceAverager, rejectedMembers } from '../../node/round/allreduce-averager.ts'
import { makeGroup, partitionGroup } from '../../node/allreduce/group.ts'
import { plainEncoder } from '../../node/compression/update-encoder.ts'
import { silentLogger } from '../../node/log/logger.ts'
import { assignShards } from '../../node/training/assignment.ts'
import { sampleClaimBound, shardSampleCapacities } from '../../node/training/sample-bound.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { InMemoryGroup, ScriptedMatchmaking } from '../round/fakes.ts'
import { identityCodec, randomVector, sameBits } from './helpers.ts'

const members = ['peer-a', 'peer-b', 'peer-c', 'peer-d', 'peer-e']
const ctx = { job: 'job', round: 3, members, part: 0 }
const OFF = { maxNormRatio: null }

function wire (length: number, weights = [10, 11, 12, 13, 14]): Array<WireContribution<Float32Array>> {
  return members.map((peer, i) => ({ peer, weight: weights[i], value: randomVector(length, i + 1) }))
}

describe('update checks (before a contribution enters its part)', () => {
  it('shape: a contribution of the wrong length, or one the reducer could not decode, is rejected', () => {
    const cs = wire(100)
    cs[1] = { ...cs[1], value: cs[1].value.subarray(0, 99) }
    const v = checkContributions(cs, 100, OFF, { ...ctx, refused: new Map([['peer-e', 'int8: bad scale']]) })
    assert.deepEqual(Object.fromEntries(v.rejected), { 'peer-b': 'shape', 'peer-e': 'shape' })
    assert.deepEqual(v.accepted.map(c => c.peer), ['peer-a', 'peer-c', 'peer-d'])
  })

  it('finite: one NaN, +Infinity or -Infinity anywhere rejects the contribution', () => {
    const cs = wire(100)
    cs[0].value[99] = NaN
    cs[2].value[0] = Infinity
    cs[3].value[50] = -Infinity
    const v = checkContributions(cs, 100, OFF, ctx)
    assert.deepEqual(Object.fromEntries(v.rejected), { 'peer-a': 'non-finite', 'peer-c': 'non-finite', 'peer-d': 'non-finite' })
  })

  it('samples: a claim above the sender\'s bound for the round and group, or not a whole number, is rejected', () => {
    const asked: Array<[string, number, readonly string[]]> = []
    const sampleBound = (peer: string, round: number, group: readonly string[]): number => { asked.push([peer, round, group]); return peer === 'peer-c' ? 11 : 1000 }
    const v = checkContributions(wire(10, [10, 10.5, 12, 13, 1000]), 10, { maxNormRatio: null, sampleBound }, ctx)
    assert.deepEqual(Object.fromEntries(v.rejected), { 'peer-b': 'samples', 'peer-c': 'samples' })
    assert.deepEqual(asked.find(a => a[0] === 'peer-c'), ['peer-c', 3, members])
  })

  it('norm: above maxNormRatio × the part\'s (lower) median norm is rejected; below it, or with fewer than 3 contributions carrying samples, it passes', () => {
    const cs = wire(1000)
    cs[4] = { ...cs[4], value: cs[4].value.map(x => -10 * x) }
    cs[3] = { ...cs[3], value: cs[3].value.map(x => 2 * x) }
    const v = checkContributions(cs, 1000, { maxNormRatio: 5 }, ctx)
    assert.deepEqual(Object.fromEntries(v.rejected), { 'peer-e': 'norm' })
    assert.ok(v.normMedian != null && v.normMedian > 0)
    // The median is taken over contributions with samples only; a zero-weight one does not pull it down.
    const zeros = wire(1000, [10, 0, 0, 13, 14])
    zeros[1] = { ...zeros[1], value: new Float32Array(1000) }
    zeros[2] = { ...zeros[2], value: new Float32Array(1000) }
    assert.equal(checkContributions(zeros, 1000, { maxNormRatio: 5 }, ctx).rejected.size, 0)
    // Two contributions with samples: no majority, no norm check.
    assert.equal(MIN_NORM_CHECK_CONTRIBUTIONS, 3)
    const two = wire(1000, [10, 0, 0, 0, 14]).map((c, i) => i === 4 ? { ...c, value: c.value.map(x => 100 * x) } : c)
    assert.equal(checkContributions(two, 1000, { maxNormRatio: 5 }, ctx).rejected.size, 0)
    assert.equal(checkContributions(cs, 1000, OFF, ctx).rejected.size, 0, 'null: no norm check')
  })

  it('the rejected members travel as a bitmap over the group (hex, bit i = member i); one that does not fit the group is refused', () => {
    const group = Array.from({ length: 9 }, (_v, i) => `peer-${i}`)
    const bitmap = encodeRejected(group, ['peer-0', 'peer-5', 'peer-8'])
    assert.equal(bitmap, '121')
    assert.deepEqual(decodeRejected(group, bitmap), ['peer-0', 'peer-5', 'peer-8'])
    assert.equal(encodeRejected(Array.from({ length: 256 }, (_v, i) => `p${i}`), ['p255']).length, 64, '256 members: 64 digits, within the meta\'s 256 characters')
    assert.throws(() => decodeRejected(group, '12'), InvalidMessageError)
    assert.throws(() => decodeRejected(group, '12z'), InvalidMessageError)
    assert.throws(() => decodeRejected(group, '128'), /names member 11 of a group of 9/)
    assert.throws(() => encodeRejected(group, ['stranger']), RangeError)
  })

  it('the checked aggregator reduces the accepted contributions only, with the rule, and names the rejected in the result\'s meta', async () => {
    const cs = wire(500)
    cs[1].value[7] = NaN
    cs[3] = { ...cs[3], value: cs[3].value.map(x => -10 * x) }
    for (const rule of [weightedMean, trimmedMean(1)]) {
      const aggregator = checkedAggregator(plaintextAggregator(identityCodec, rule), { maxNormRatio: 5 })
      const reduced = await aggregator.reduce(cs, 500, undefined, ctx)
      const expected = rule.combine([cs[0], cs[2], cs[4]].map(c => ({ peer: c.peer, weight: c.weight, values: c.value }))).values
      assert.ok(sameBits(aggregator.decodeResult(reduced.payload, 500), expected), rule.id)
      assert.equal(reduced.meta?.rejected, encodeRejected(members, ['peer-b', 'peer-d']))
      assert.equal(reduced.meta?.['rejected.non-finite'], 1)
      assert.equal(reduced.meta?.['rejected.norm'], 1)
      assert.equal(typeof reduced.meta?.normMedian, 'number')
    }
    const plain = checkedAggregator(plaintextAggregator(identityCodec, weightedMean), { maxNormRatio: 5 })
    await assert.rejects(async () => await plain.reduce(cs, 500), /needs the round context/)
    const clean = await plain.reduce(wire(500), 500, undefined, ctx)
    assert.equal(clean.meta?.rejected, undefined, 'nothing rejected, no bitmap')
  })

  it('sample bound: inner steps × min(batch size, what the shards assigned among the group hold); text shards by their bytes', () => {
    const manifest = { format: { kind: 'csv' }, shards: [{ samples: 30 }, { samples: 30 }, { samples: 20 }, { samples: 5 }] } as any
    const capacities = shardSampleCapacities(manifest)
    assert.deepEqual(capacities, [30, 30, 20, 5])
    assert.deepEqual(shardSampleCapacities({ format: { kind: 'text' }, shards: [{ samples: 1, bytes: 900 }] } as any), [900])
    const bound = sampleClaimBound({ job: 'job', inner: { steps: 10, batchSize: 32 }, capacities })
    const group = ['peer-a', 'peer-b', 'peer-c']
    const assigned = assignShards({ jobId: 'job', round: 4, peerIds: group, shardCount: 4 })
    for (const peer of group) {
      const held = assigned.get(peer)!.reduce((s, k) => s + capacities[k], 0)
      assert.equal(bound(peer, 4, group), 10 * Math.min(32, held), peer)
    }
    assert.equal(bound('stranger', 4, group), 0, 'no shards, no samples')
    assert.ok(group.some(p => bound(p, 4, group) < 320), 'some peer holds less than a batch: the shards bind')
  })
})

describe('update checks in the reduce step: the contributions table', () => {
  const signal = new AbortController().signal
  const ids = ['peer-a', 'peer-b', 'peer-c', 'peer-d', 'peer-e']

  it('a member sending NaN and one claiming more samples than its bound get 0 samples; the average is of the others; every member agrees bit for bit', async () => {
    const net = new InMemoryGroup()
    const sampleBound = (): number => 100
    const averagers = ids.map(id => new AllReduceAverager(
      { matchmaking: new ScriptedMatchmaking(ids), encoder: plainEncoder(identityCodec), allReduce: net.member(id), logger: silentLogger() },
      { job: 'job', aggregation: { rule: 'trimmed-mean', trim: 1, maxNormRatio: 5 }, sampleBound, minGroupSize: 3 }
    ))
    const updates = ids.map((_id, i) => randomVector(1000, i + 1))
    updates[1][123] = NaN
    const samples = [100, 100, 100, 5000, 100]
    const results = await Promise.all(averagers.map(async (a, i) => await a.average(0, { pseudoGradient: updates[i], samples: samples[i], loss: 0 }, signal)))
    for (const r of results) {
      assert.deepEqual(r.contributions, [{ peer: 'peer-a', samples: 100 }, { peer: 'peer-b', samples: 0 }, { peer: 'peer-c', samples: 100 }, { peer: 'peer-d', samples: 0 }, { peer: 'peer-e', samples: 100 }])
      assert.ok(sameBits(r.average, results[0].average))
    }
    // The part holding the NaN is the trimmed mean of the three others' slices; the other parts still take B's
    // finite values (a verdict is per part, the weight 0 for the whole round); D's claim fails at every reducer.
    const parts = partitionGroup(makeGroup({ job: 'job', round: 0, members: ids, vectorLength: 1000 }))
    parts.offsets.forEach((offset, k) => {
      const end = offset + parts.lengths[k]
      const from = (offset <= 123 && 123 < end ? [0, 2, 4] : [0, 1, 2, 4]).map(i => ({ peer: ids[i], weight: 100, values: updates[i].subarray(offset, end) }))
      assert.ok(sameBits(results[0].average.subarray(offset, end), trimmedMean(1).combine(from).values), `part ${k}`)
    })
  })

  it('a member that claims different sample counts to different reducers gets 0; a malformed bitmap is ignored', () => {
    const group = makeGroup({ job: 'job', round: 0, members: ['peer-a', 'peer-b', 'peer-c'], vectorLength: 9 })
    const part = (index: number, weights: number[], meta?: Record<string, string>) => ({ index, offset: 3 * index, elements: 3, reducer: group.members[index], reducedBy: group.members[index], standIn: false, contributors: group.members.map((peer, i) => ({ peer, weight: weights[i] })), meta, localOnly: false })
    const rejected = rejectedMembers(group, [part(0, [10, 10, 10]), part(1, [10, 10, 99], { rejected: 'zz' }), part(2, [10, 10, 10], { rejected: encodeRejected(group.members, [group.members[0]]) })])
    assert.deepEqual([...rejected.keys()].sort(), [group.members[0], group.members[2]].sort())
    assert.match(rejected.get(group.members[2])!, /claimed 10 and 99 samples/)
  })

  it('without an aggregation the averager keeps today\'s behaviour: the plain weighted mean, nothing checked', async () => {
    const net = new InMemoryGroup()
    const averagers = ids.slice(0, 3).map(id => new AllReduceAverager(
      { matchmaking: new ScriptedMatchmaking(ids.slice(0, 3)), encoder: plainEncoder(identityCodec), allReduce: net.member(id), logger: silentLogger() },
      { job: 'job' }
    ))
    const updates = [Float32Array.of(1, 1, 1), Float32Array.of(0, 0, 0), Float32Array.of(90, 90, 90)]
    const results = await Promise.all(averagers.map(async (a, i) => await a.average(0, { pseudoGradient: updates[i], samples: 1, loss: 0 }, signal)))
    assert.deepEqual([...results[0].average], [91 / 3, 91 / 3, 91 / 3].map(Math.fround))
    assert.deepEqual(results[0].contributions.map(c => c.samples), [1, 1, 1])
    assert.equal(jobAggregator(identityCodec, { rule: 'mean', trim: 1, maxNormRatio: 5 }).id, 'weighted-mean/none')
  })
})
