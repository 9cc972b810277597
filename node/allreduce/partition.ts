/**
 * Splits a vector into one contiguous part per group member. Part i is reduced by member i (in the
 * group's canonical order). Pure and deterministic: every member computes the same boundaries.
 */

export interface Partition {
  /** Part i covers [offsets[i], offsets[i] + lengths[i]). */
  offsets: number[]
  lengths: number[]
}

/**
 * Partitions `length` elements into `shares.length` contiguous parts proportional to `shares`
 * (equal shares by default). Rounding is by largest remainder with ties to the lower index, so the
 * result depends only on the inputs.
 */
export function partitionVector (length: number, parts: number | readonly number[]): Partition {
  const shares = typeof parts === 'number' ? new Array<number>(parts).fill(1) : [...parts]
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`bad vector length ${length}`)
  if (shares.length === 0) throw new RangeError('cannot partition among zero members')
  if (shares.some(s => !Number.isFinite(s) || s < 0)) throw new RangeError('shares must be finite and non-negative')
  const total = shares.reduce((a, b) => a + b, 0)
  const norm = total > 0 ? shares.map(s => s / total) : shares.map(() => 1 / shares.length)
  const lengths = norm.map(f => Math.floor(f * length))
  let left = length - lengths.reduce((a, b) => a + b, 0)
  const byRemainder = norm.map((f, i) => ({ i, r: f * length - lengths[i] })).sort((a, b) => (b.r - a.r) || (a.i - b.i))
  for (let k = 0; left > 0; k = (k + 1) % byRemainder.length, left--) lengths[byRemainder[k].i]++
  const offsets: number[] = []
  let at = 0
  for (const n of lengths) { offsets.push(at); at += n }
  return { offsets, lengths }
}

/**
 * Shares for a speed-balanced partition: proportional to each member's announced upload speed, clamped
 * to [1/4, 4] times the median so that one wrong hint cannot hand a member most of the work.
 */
export function speedShares (speeds: readonly number[]): number[] {
  const sorted = [...speeds].sort((a, b) => a - b)
  const median = sorted[Math.floor(sorted.length / 2)] ?? 1
  return speeds.map(s => Math.min(4 * median, Math.max(median / 4, s)))
}
