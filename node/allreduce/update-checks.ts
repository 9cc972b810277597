/**
 * Update checks: before a contribution enters a part's reduction, its reducer checks it, and a contribution
 * that fails is left out of the part and named in the part result's meta, so that every member learns the same
 * verdict (it receives the same result) and gives the sender weight 0 in the round's contributions table
 * (round/allreduce-averager.ts). Checked per contribution to the part:
 *
 * - **shape**: as many values as the part has (a payload that does not decode was refused on arrival, reducer.ts);
 * - **finite**: every value finite (no NaN, no ±Infinity);
 * - **samples**: the claimed weight a whole number of samples, at most what the sender could have processed this round: the job's inner
 *   steps × min(batch size, the samples of the shards the deterministic assignment gives it among the group);
 * - **norm**: its L2 norm on the part at most `maxNormRatio` × the median norm of the part's contributions
 *   that passed the other checks and carry samples (with 3 or more of them; two peers cannot tell which of them
 *   is off). Per part, because a reducer sees only its part: the bound holds on every part, so it bounds the
 *   whole update too (‖x‖² = Σ ‖x_p‖²), and an update cannot hide a large change in one part behind small
 *   ones elsewhere. The median is the lower one: with fewer than half of the values Byzantine it is at most an
 *   honest norm's size.
 *
 * A peer rejected on any part is weight 0 for the whole round; the parts whose reducers accepted it still hold
 * its values (each bounded there by the norm check and the robust rule), which keeps one pass per part.
 */
import { InvalidMessageError } from '../../protocol/errors.ts'
import type { PartAggregator, PartMeta, ReduceContext, WireContribution } from './combine.ts'

export type RejectReason = 'shape' | 'non-finite' | 'samples' | 'norm'
export const REJECT_REASONS: readonly RejectReason[] = ['shape', 'non-finite', 'samples', 'norm']

/** The most samples `peer` can have processed in `round` with `members` as the round's group. */
export type SampleBound = (peer: string, round: number, members: readonly string[]) => number

export interface UpdateCheckOptions {
  /** Reject a contribution whose norm on a part exceeds this multiple of the part's median norm; null: no norm check. */
  maxNormRatio: number | null
  /** The sample-claim bound (absent: claims are not checked against the data, only the wire's limits). */
  sampleBound?: SampleBound
}

/** Fewer contributions than this with samples and the norm check is skipped (no majority says what is normal). */
export const MIN_NORM_CHECK_CONTRIBUTIONS = 3

/** Meta key of the rejected members, a bitmap over the group's members in canonical order (hex, bit i = member i). */
export const REJECTED_META_KEY = 'rejected'

export interface PartVerdict {
  /** Contributions that passed, in the order given. */
  accepted: Array<WireContribution<Float32Array>>
  rejected: Map<string, RejectReason>
  /** The median norm the norm check compared with, when it ran. */
  normMedian?: number
}

function l2 (values: Float32Array): number {
  let s = 0
  for (let i = 0; i < values.length; i++) s += values[i] * values[i]
  return Math.sqrt(s)
}

function allFinite (values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false
  return true
}

/** Checks the contributions to one part (see the module's comment); deterministic in its inputs. */
export function checkContributions (contributions: ReadonlyArray<WireContribution<Float32Array>>, elements: number, opts: UpdateCheckOptions, ctx?: ReduceContext): PartVerdict {
  const rejected = new Map<string, RejectReason>()
  for (const [peer] of ctx?.refused ?? []) rejected.set(peer, 'shape')
  const passing: Array<WireContribution<Float32Array>> = []
  for (const c of contributions) {
    if (rejected.has(c.peer)) continue
    if (!(c.value instanceof Float32Array) || c.value.length !== elements) rejected.set(c.peer, 'shape')
    else if (!allFinite(c.value)) rejected.set(c.peer, 'non-finite')
    else if (!Number.isSafeInteger(c.weight) || (ctx != null && opts.sampleBound != null && c.weight > opts.sampleBound(c.peer, ctx.round, ctx.members))) rejected.set(c.peer, 'samples')
    else passing.push(c)
  }
  let normMedian: number | undefined
  const ratio = opts.maxNormRatio
  const weighed = passing.filter(c => c.weight > 0)
  if (ratio != null && weighed.length >= MIN_NORM_CHECK_CONTRIBUTIONS) {
    const norms = new Map(weighed.map(c => [c.peer, l2(c.value)]))
    const sorted = [...norms.values()].sort((a, b) => a - b)
    normMedian = sorted[Math.floor((sorted.length - 1) / 2)]
    for (const [peer, norm] of norms) if (norm > ratio * normMedian) rejected.set(peer, 'norm')
  }
  return { accepted: passing.filter(c => !rejected.has(c.peer)), rejected, normMedian }
}

/** The bitmap of `rejected` over `members` (canonical order), as hex: ⌈n/4⌉ digits, bit i of the whole = member i. */
export function encodeRejected (members: readonly string[], rejected: Iterable<string>): string {
  const digits = new Uint8Array(Math.ceil(members.length / 4))
  const index = new Map(members.map((m, i) => [m, i]))
  for (const peer of rejected) {
    const i = index.get(peer)
    if (i == null) throw new RangeError(`rejected peer ${peer} is not a member of the group`)
    digits[i >> 2] |= 1 << (i & 3)
  }
  return Array.from(digits, d => d.toString(16)).join('')
}

/** The members a part result's `rejected` bitmap names; throws InvalidMessageError when it does not fit the group. */
export function decodeRejected (members: readonly string[], bitmap: string): string[] {
  if (!/^[0-9a-f]*$/.test(bitmap) || bitmap.length !== Math.ceil(members.length / 4)) {
    throw new InvalidMessageError(`rejected bitmap '${bitmap.slice(0, 80)}' does not fit a group of ${members.length}`)
  }
  const out: string[] = []
  for (let i = 0; i < members.length; i++) if ((parseInt(bitmap[i >> 2], 16) >> (i & 3)) & 1) out.push(members[i])
  for (let i = members.length; i < bitmap.length * 4; i++) {
    if ((parseInt(bitmap[i >> 2], 16) >> (i & 3)) & 1) throw new InvalidMessageError(`rejected bitmap names member ${i} of a group of ${members.length}`)
  }
  return out
}

/** What a part result's meta says about rejections: the bitmap and a count per reason. */
export function verdictMeta (members: readonly string[], verdict: PartVerdict): PartMeta {
  const meta: PartMeta = {}
  if (verdict.normMedian != null) meta.normMedian = verdict.normMedian
  if (verdict.rejected.size === 0) return meta
  meta[REJECTED_META_KEY] = encodeRejected(members, verdict.rejected.keys())
  for (const reason of REJECT_REASONS) {
    const n = [...verdict.rejected.values()].filter(r => r === reason).length
    if (n > 0) meta[`rejected.${reason}`] = n
  }
  return meta
}

/**
 * `inner` with the update checks in front of its reduction: rejected contributions are left out, and the part
 * result's meta names them. Needs the reduce context (the round and its members) to check sample claims and
 * to name what it rejected.
 */
export function checkedAggregator (inner: PartAggregator<Float32Array>, opts: UpdateCheckOptions): PartAggregator<Float32Array> {
  return {
    ...inner,
    id: inner.id,
    async reduce (contributions, elements, into, context) {
      if (context == null) throw new RangeError('checked aggregator: reduce needs the round context (round, members)')
      const verdict = checkContributions(contributions, elements, opts, context)
      const reduced = await inner.reduce(verdict.accepted, elements, into, context)
      return { ...reduced, meta: { ...reduced.meta, ...verdictMeta(context.members, verdict) } }
    }
  }
}
