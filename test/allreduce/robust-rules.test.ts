import assert from 'node:assert/strict'
import { plaintextAggregator, weightedMean, type CombineRule, type PartContribution } from '../../node/allreduce/combine.ts'
import { combineRuleFor } from '../../node/allreduce/aggregation.ts'
import { coordinateMedian, trimmedMean } from '../../node/allreduce/robust-rules.ts'
import { identityCodec, randomVector, sameBits } from './helpers.ts'

/** Independent float64 reference: per coordinate, sort (value, then peer), drop k each end, weighted mean of the rest summed in peer order. */
function trimmedReference (cs: PartContribution[], k: number): Float64Array {
  const live = cs.filter(c => c.weight > 0)
  const n = live[0].values.length
  const out = new Float64Array(n)
  for (let j = 0; j < n; j++) {
    const at = live.map(c => ({ v: c.values[j], w: c.weight, peer: c.peer })).sort((a, b) => a.v - b.v || (a.peer < b.peer ? -1 : 1))
    const kk = Math.min(k, Math.floor((at.length - 1) / 2))
    const kept = at.slice(kk, at.length - kk).sort((a, b) => (a.peer < b.peer ? -1 : 1))
    out[j] = kept.reduce((s, x) => s + x.w * x.v, 0) / kept.reduce((s, x) => s + x.w, 0)
  }
  return out
}

const peers = ['peer-a', 'peer-b', 'peer-c', 'peer-d', 'peer-e', 'peer-f', 'peer-g']

function contributions (n: number, length: number, weights?: number[]): PartContribution[] {
  return Array.from({ length: n }, (_v, i) => ({ peer: peers[i], weight: weights?.[i] ?? 10 + i, values: randomVector(length, i + 1, 2) }))
}

function shuffled<T> (items: T[], seed: number): T[] {
  const out = [...items]
  let x = seed
  for (let i = out.length - 1; i > 0; i--) { x = (x * 1103515245 + 12345) >>> 0; const j = x % (i + 1); [out[i], out[j]] = [out[j], out[i]] }
  return out
}

describe('robust combine rules (coordinate-wise trimmed mean, median)', () => {
  it('the trimmed mean drops k values at each end of every coordinate and weights the rest by samples (float64 reference)', () => {
    const cs = contributions(5, 2000)
    for (const k of [1, 2]) {
      const { values, meta } = trimmedMean(k).combine(cs)
      const ref = trimmedReference(cs, k)
      for (let j = 0; j < values.length; j++) assert.equal(values[j], Math.fround(ref[j]), `k=${k} coordinate ${j}`)
      assert.deepEqual(meta, { trimmed: k, kept: 5 - 2 * k })
    }
  })

  it('every rule gives the same bits whatever order the contributions arrive in (canonical order), and combineInto equals combine even written over a contribution', () => {
    const rules: CombineRule[] = [trimmedMean(1), trimmedMean(2), coordinateMedian, weightedMean]
    // Ties and signed zeros: ranked by (value, canonical index), so arrival order cannot matter.
    const cs = contributions(6, 3001)
    for (let j = 0; j < 3001; j += 7) { cs[1].values[j] = cs[4].values[j]; cs[2].values[j] = 0; cs[3].values[j] = -0 }
    for (const rule of rules) {
      const reference = rule.combine(cs).values
      for (let seed = 1; seed <= 4; seed++) {
        assert.ok(sameBits(rule.combine(shuffled(cs, seed)).values, reference), `${rule.id}: order ${seed}`)
        const copies = shuffled(cs, seed).map(c => ({ ...c, values: c.values.slice() }))
        const out = copies[seed % copies.length].values
        rule.combineInto!(copies, out)
        assert.ok(sameBits(out, reference), `${rule.id}: combineInto over a contribution, order ${seed}`)
      }
    }
  })

  it('breakdown: with at most k attackers at each coordinate (different ones at different coordinates) the result stays within the honest values; k + 1 attackers move it anywhere', () => {
    const length = 1000
    for (const k of [1, 2]) {
      const n = 2 * k + 3
      const honest = contributions(n, length)
      const attacked = honest.map(c => ({ ...c, values: c.values.slice() }))
      // At coordinate j the attackers are members j, j+1, ... (mod n), k of them, sending ±1e30 or a sign-flipped ×1000.
      for (let j = 0; j < length; j++) {
        for (let a = 0; a < k; a++) attacked[(j + a) % n].values[j] = j % 3 === 0 ? 1e30 : j % 3 === 1 ? -1e30 : -1000 * honest[(j + a) % n].values[j]
      }
      const out = trimmedMean(k).combine(attacked).values
      for (let j = 0; j < length; j++) {
        const honestAt = honest.filter((_c, i) => !Array.from({ length: k }, (_v, a) => (j + a) % n).includes(i)).map(c => c.values[j])
        assert.ok(out[j] >= Math.min(...honestAt) && out[j] <= Math.max(...honestAt), `k=${k} coordinate ${j}: ${out[j]} outside the honest range`)
      }
      // One attacker more than k at coordinate 0, all sending 1e30: the result follows them.
      const broken = honest.map((c, i) => ({ ...c, values: c.values.slice() }))
      for (let a = 0; a <= k; a++) broken[a].values[0] = 1e30
      assert.ok(trimmedMean(k).combine(broken).values[0] > 1e20, `k=${k}: k+1 attackers should break it`)
    }
  })

  it('the weighted mean has no such tolerance: one attacker sending 1e30 moves it', () => {
    const cs = contributions(5, 4)
    cs[2].values[0] = 1e30
    assert.ok(weightedMean.combine(cs).values[0] > 1e20)
    assert.ok(Math.abs(trimmedMean(1).combine(cs).values[0]) < 2)
  })

  it('the median: the middle value for an odd group, the samples-weighted mean of the two middle ones for an even group', () => {
    const mk = (vs: number[], ws: number[]): PartContribution[] => vs.map((v, i) => ({ peer: peers[i], weight: ws[i], values: Float32Array.of(v, -v) }))
    assert.deepEqual([...coordinateMedian.combine(mk([5, -3, 100, 2, 1], [1, 1, 1, 1, 1])).values], [2, -2])
    assert.deepEqual([...coordinateMedian.combine(mk([5, -3, 100, 2], [1, 1, 1, 3])).values], [Math.fround((3 * 2 + 1 * 5) / 4), Math.fround((3 * -2 + 1 * -5) / 4)])
    assert.equal(coordinateMedian.id, 'median')
  })

  it('small groups: trimming is capped at ⌊(n−1)/2⌋ at each end (three peers with k = 2: the median; two peers: their weighted mean)', () => {
    const three = contributions(3, 50)
    assert.ok(sameBits(trimmedMean(2).combine(three).values, coordinateMedian.combine(three).values))
    assert.deepEqual(trimmedMean(2).combine(three).meta, { trimmed: 1, kept: 1 })
    const two = contributions(2, 50)
    const mean = weightedMean.combine(two).values
    const trimmed = trimmedMean(1).combine(two).values
    for (let j = 0; j < 50; j++) assert.ok(Math.abs(trimmed[j] - mean[j]) <= 1e-6 * Math.abs(mean[j]) + 1e-7)
    assert.deepEqual([...trimmedMean(1).combine([]).values], [])
  })

  it('members with no samples (weight 0) are left out before trimming, and a NaN ranks highest, so k of them are trimmed', () => {
    const cs = contributions(5, 20, [10, 0, 10, 10, 10])
    cs[1].values.fill(1e30)
    cs[3].values[4] = NaN
    const out = trimmedMean(1).combine(cs).values
    const ref = trimmedReference(cs.filter(c => c.weight > 0).map(c => c.peer === 'peer-d' ? { ...c, values: c.values.map((v, j) => j === 4 ? Infinity : v) } : c), 1)
    for (let j = 0; j < 20; j++) assert.equal(out[j], Math.fround(ref[j]), `coordinate ${j}`)
    assert.ok(out.every(Number.isFinite))
  })

  it('through the plaintext aggregator (blocks of the part, then the codec) the result is the rule\'s, bit for bit', async () => {
    const cs = contributions(5, 10_000)
    const aggregator = plaintextAggregator(identityCodec, trimmedMean(1))
    const reduced = await aggregator.reduce(cs.map(c => ({ peer: c.peer, weight: c.weight, value: c.values })), 10_000)
    assert.ok(sameBits(aggregator.decodeResult(reduced.payload, 10_000), trimmedMean(1).combine(cs).values))
    assert.equal(aggregator.id, 'trimmed-mean-1/none')
  })

  it('the job\'s rule by name, and refuses a trim out of bounds', () => {
    assert.equal(combineRuleFor({ rule: 'mean', trim: 1 }), weightedMean)
    assert.equal(combineRuleFor({ rule: 'trimmed-mean', trim: 3 }).id, 'trimmed-mean-3')
    assert.equal(combineRuleFor({ rule: 'median', trim: 1 }).id, 'median')
    assert.throws(() => trimmedMean(0), /trim must be an integer in \[1, 127\], got 0/)
    assert.throws(() => trimmedMean(1.5), /got 1.5/)
    assert.throws(() => trimmedMean(128), /got 128/)
  })
})
