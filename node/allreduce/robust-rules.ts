/**
 * Byzantine-robust combine rules: coordinate-wise, so they run on a reducer's part (and on blocks of it) like
 * the weighted mean, and each output value depends only on the same index of the inputs.
 *
 * {@link trimmedMean}(k): at each coordinate, drop the k lowest and the k highest values and take the
 * samples-weighted mean of the rest. With at most k Byzantine values at a coordinate, every value kept lies
 * between the smallest and the largest honest value there (at most k values can lie below the smallest honest
 * one, and they are all dropped; the same above), so the result does too, whatever the attackers send: the
 * breakdown point is k of n values per coordinate (needs n > 2k). {@link coordinateMedian} is the same with
 * k = ⌊(n−1)/2⌋, the most a group of n can trim (breakdown just under half).
 *
 * Bit-identical on every reducer: contributions come in canonical peer order, values at a coordinate are
 * ranked by (value, canonical index), and the kept ones summed in canonical order in float64, divided once and
 * rounded to float32. A NaN ranks above everything (trimmed as a high value), so a non-finite value can only
 * reach the result when more than k of them arrive; the update checks (update-checks.ts) refuse them first.
 */
import { InvalidMessageError } from '../../protocol/errors.ts'
import { inCanonicalOrder, type CombineRule, type PartContribution, type PartMeta } from './combine.ts'

/** The most values a trimmed mean may drop at each end (half the largest group: MAX_GROUP_SIZE / 2 − 1). */
export const MAX_TRIM = 127

/** Ranks a before b: by value, NaN above everything (`x !== x` is true of NaN only), ties by canonical index. */
function before (va: number, ia: number, vb: number, ib: number): boolean {
  const na = va !== va
  const nb = vb !== vb
  if (na !== nb) return nb
  if (!na && va !== vb) return va < vb
  return ia < ib
}

/** Coordinates per block of the k = 1 path (its per-coordinate arrays stay in cache). */
const BLOCK = 16384

/**
 * k = 1, the common case, contribution after contribution over blocks of the part (contiguous reads, no sort):
 * one pass finds each coordinate's lowest and highest value by rank, one sums the others in canonical order.
 */
function dropLowestAndHighest (values: Float32Array[], weights: number[], out: Float32Array): void {
  const m = values.length
  const n = out.length
  const size = Math.min(n, BLOCK)
  const loV = new Float64Array(size); const loI = new Int32Array(size)
  const hiV = new Float64Array(size); const hiI = new Int32Array(size)
  const sum = new Float64Array(size); const total = new Float64Array(size)
  for (let at = 0; at < n; at += BLOCK) {
    const len = Math.min(BLOCK, n - at)
    const first = values[0]
    for (let j = 0; j < len; j++) { loV[j] = hiV[j] = first[at + j]; loI[j] = hiI[j] = 0 }
    for (let i = 1; i < m; i++) {
      const v = values[i]
      for (let j = 0; j < len; j++) {
        const x = v[at + j]
        const lo = loV[j]
        // Ranks below the lowest so far: not NaN, and below it (or it is NaN); a tie keeps the earlier index.
        if (x === x && (lo !== lo || x < lo)) { loV[j] = x; loI[j] = i }
        const hi = hiV[j]
        // Ranks above the highest so far: NaN, or not below a non-NaN highest; a tie takes the later index.
        if (x !== x || (hi === hi && x >= hi)) { hiV[j] = x; hiI[j] = i }
      }
    }
    sum.fill(0)
    total.fill(0)
    for (let i = 0; i < m; i++) {
      const v = values[i]
      const w = weights[i]
      for (let j = 0; j < len; j++) {
        if (loI[j] === i || hiI[j] === i) continue
        sum[j] += w * v[at + j]
        total[j] += w
      }
    }
    for (let j = 0; j < len; j++) out[at + j] = sum[j] / total[j]
  }
}

/**
 * A coordinate-wise trimmed mean dropping `trim` values at each end, weighted by samples among the values
 * kept. A group too small to drop that many (n ≤ 2·trim) drops ⌊(n−1)/2⌋ at each end instead (its median), and
 * a group of two or fewer is averaged as is (two peers cannot outvote each other).
 */
export function trimmedMean (trim: number, id = `trimmed-mean-${trim}`): CombineRule {
  if (!Number.isInteger(trim) || trim < 1 || trim > MAX_TRIM) throw new RangeError(`trim must be an integer in [1, ${MAX_TRIM}], got ${trim}`)
  const rule: CombineRule = {
    id,
    combine (contributions) {
      const out = new Float32Array(contributions[0]?.values.length ?? 0)
      return { values: out, meta: rule.combineInto!(contributions, out) }
    },
    combineInto (contributions, out) {
      const n = out.length
      const live: PartContribution[] = []
      for (const c of inCanonicalOrder(contributions)) {
        if (c.values.length !== n) throw new InvalidMessageError(`contribution of ${c.peer} has ${c.values.length} values, expected ${n}`)
        if (c.weight > 0) live.push(c)
      }
      const m = live.length
      const k = Math.min(trim, Math.floor((m - 1) / 2))
      const meta: PartMeta = { trimmed: Math.max(0, k), kept: Math.max(0, m - 2 * Math.max(0, k)) }
      if (m === 0) { out.fill(0); return meta }
      const values = live.map(c => c.values)
      const weights = live.map(c => c.weight)
      if (k === 1) { dropLowestAndHighest(values, weights, out); return meta }
      // Per coordinate: the m values ranked by insertion sort (m is a group's size), the middle ones kept.
      const v = new Float64Array(m)
      const idx = new Int32Array(m)
      const keep = new Uint8Array(m)
      for (let j = 0; j < n; j++) {
        for (let i = 0; i < m; i++) {
          const x = values[i][j]
          let at = i
          while (at > 0 && before(x, i, v[at - 1], idx[at - 1])) { v[at] = v[at - 1]; idx[at] = idx[at - 1]; at-- }
          v[at] = x; idx[at] = i
        }
        for (let r = k; r < m - k; r++) keep[idx[r]] = 1
        let sum = 0
        let total = 0
        for (let i = 0; i < m; i++) {
          if (keep[i] === 0) continue
          keep[i] = 0
          sum += weights[i] * values[i][j]
          total += weights[i]
        }
        out[j] = sum / total
      }
      return meta
    }
  }
  return rule
}

/** The coordinate-wise median (the samples-weighted mean of the two middle values when the group is even). */
export const coordinateMedian: CombineRule = trimmedMean(MAX_TRIM, 'median')
