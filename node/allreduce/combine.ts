/**
 * Combine rules reduce the contributions to one part into the part's result. Two layers keep the wire
 * protocol fixed while rules change:
 *
 * - {@link CombineRule}: plaintext math over decoded floats: the weighted mean here; the robust rules
 *   (coordinate-wise trimmed mean and median) in robust-rules.ts; aggregation.ts picks the job's.
 * - {@link PartAggregator}: what actually travels. The wire carries opaque payload bytes plus a weight;
 *   the aggregator encodes a member's part, checks and decodes what arrives, reduces, and encodes the
 *   result. {@link plaintextAggregator} puts a {@link VectorCodec} around a CombineRule; a homomorphic
 *   aggregator (CKKS, where the reducer only adds ciphertexts) implements the same interface.
 */
import { decodeInto, encodeDecoded, type VectorCodec } from '../compression/codec.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { canonicalOrder } from '../../protocol/allreduce.ts'

export type PartMeta = Record<string, number | string | boolean>

export interface PartContribution {
  peer: string
  weight: number
  values: Float32Array
}

export interface CombinedPart {
  values: Float32Array
  meta?: PartMeta
}

export interface CombineRule {
  readonly id: string
  /**
   * `contributions` come in canonical peer order; the result must depend only on them, not on arrival
   * order. Rules are coordinate-wise (each output value depends on the same index of the inputs only), so
   * the aggregator may call them on blocks of a part to keep the event loop responsive.
   */
  combine: (contributions: readonly PartContribution[]) => CombinedPart
  /**
   * The same as `combine`, bit for bit, written into `out` (as long as every contribution) instead of a new
   * array; returns the meta `combine` would. `out` may be one of the contributions' values (a reducer decodes
   * a contribution into the place of the result): read index j of every contribution before writing out[j].
   * Optional: a rule without it is called through `combine`.
   */
  combineInto?: (contributions: readonly PartContribution[], out: Float32Array) => PartMeta | undefined
}

/** Sort key of contributions: the canonical (peer id) order, so sums are bit-identical on every reducer. */
export function inCanonicalOrder<T extends { peer: string }> (items: readonly T[]): T[] {
  const order = canonicalOrder(items.map(i => i.peer))
  const byPeer = new Map(items.map(i => [i.peer, i]))
  return order.map(p => byPeer.get(p)!)
}

/**
 * Σ wᵢ·xᵢ / Σ wᵢ, accumulated in float64 in canonical peer order and rounded once to float32.
 * A part whose total weight is zero averages to zeros (no samples, no update).
 */
/** Elements summed per block by {@link weightedMean}'s combineInto (its float64 accumulator stays in cache). */
const MEAN_BLOCK = 16384

export const weightedMean: CombineRule = {
  id: 'weighted-mean',
  combine (contributions) {
    const out = new Float32Array(contributions[0]?.values.length ?? 0)
    const meta = weightedMean.combineInto!(contributions, out)
    return { values: out, meta }
  },
  combineInto (contributions, out) {
    const n = out.length
    const live: PartContribution[] = []
    let total = 0
    for (const c of inCanonicalOrder(contributions)) {
      if (c.values.length !== n) throw new InvalidMessageError(`contribution of ${c.peer} has ${c.values.length} values, expected ${n}`)
      if (c.weight === 0) continue
      total += c.weight
      live.push(c)
    }
    if (total <= 0) { out.fill(0); return { totalWeight: total } }
    // 0, then w·x of each contribution in canonical order, in float64, divided once and rounded to float32:
    // the operations of one accumulator over the whole part, in the same order. Up to three contributions
    // (most parts: the group's members) in one pass without an accumulator array.
    if (live.length <= 3) {
      const [a, b, c] = live
      const wa = a.weight; const va = a.values
      if (live.length === 1) for (let j = 0; j < n; j++) out[j] = (0 + wa * va[j]) / total
      else if (live.length === 2) {
        const wb = b.weight; const vb = b.values
        for (let j = 0; j < n; j++) out[j] = ((0 + wa * va[j]) + wb * vb[j]) / total
      } else {
        const wb = b.weight; const vb = b.values; const wc = c.weight; const vc = c.values
        for (let j = 0; j < n; j++) out[j] = (((0 + wa * va[j]) + wb * vb[j]) + wc * vc[j]) / total
      }
      return { totalWeight: total }
    }
    const acc = new Float64Array(Math.min(n, MEAN_BLOCK))
    for (let at = 0; at < n; at += MEAN_BLOCK) {
      const len = Math.min(MEAN_BLOCK, n - at)
      acc.fill(0)
      for (const c of live) {
        const w = c.weight
        const v = c.values
        for (let j = 0; j < len; j++) acc[j] += w * v[at + j]
      }
      for (let j = 0; j < len; j++) out[at + j] = acc[j] / total
    }
    return { totalWeight: total }
  }
}

export interface WireContribution<T> {
  peer: string
  weight: number
  /** What {@link PartAggregator.decodeContribution} made of the payload. */
  value: T
}

/** The round a part is reduced in, as the reducer knows it (update checks need it: sample claims, who to name). */
export interface ReduceContext {
  job: string
  round: number
  /** The group's members in canonical order. */
  members: readonly string[]
  part: number
  /** Members whose contribution to the part arrived but could not be decoded (shape), with why. */
  refused?: ReadonlyMap<string, string>
}

export interface ReducedPayload {
  payload: Uint8Array
  meta?: PartMeta
  /** What `decodeResult(payload)` gives, when the aggregator has it from the same pass (saves decoding it again). */
  decoded?: Float32Array
}

/** Elements combined between two yields to the event loop (heartbeats and other streams keep flowing). */
export const COMBINE_BLOCK = 1 << 20

const yieldToEventLoop = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

export interface PartAggregator<T = unknown> {
  /** Names the rule and the encoding; members of a round must agree on it (it is part of the job spec). */
  readonly id: string
  /** The payload a member sends for its slice `values` of the vector. */
  encodeContribution: (values: Float32Array, weight: number) => Uint8Array
  /** Upper bound of a contribution payload for a part of `elements` values: frames announcing more are refused unread. */
  maxContributionBytes: (elements: number) => number
  /** Checks and decodes a received payload; throws InvalidMessageError when it is malformed. */
  decodeContribution: (payload: Uint8Array, elements: number) => T
  /**
   * True when what `decodeContribution(Into)` returns shares no memory with the payload: the reducer may then
   * read payloads into reused buffers and give each back as soon as it is decoded.
   */
  readonly decodeCopies?: boolean
  /**
   * `decodeContribution` into `out` (`elements` = out.length), which the caller lends for the contribution's
   * values; optional. The reducer lends the place of its own part's result, which `reduce` then overwrites.
   */
  decodeContributionInto?: (payload: Uint8Array, out: Float32Array) => T
  /**
   * Reduces one part; `contributions` come in canonical peer order. May take its time (it is awaited). `into`
   * (`elements` long), when given, is where this peer keeps the part's result: an aggregator that has the
   * decoded result may build it there and return it as `decoded`, sparing an array and a copy. `context` names
   * the round (the reducer passes it; update-checks.ts's aggregator needs it).
   */
  reduce: (contributions: ReadonlyArray<WireContribution<T>>, elements: number, into?: Float32Array, context?: ReduceContext) => ReducedPayload | Promise<ReducedPayload>
  maxResultBytes: (elements: number) => number
  /** Decodes a part result received from its reducer (the reducer decodes its own the same way). */
  decodeResult: (payload: Uint8Array, elements: number) => Float32Array
  /** `decodeResult` into `out` (`elements` = out.length) without allocating; optional. */
  decodeResultInto?: (payload: Uint8Array, out: Float32Array) => void
  /**
   * The contribution `decodeContribution` makes of a payload that decodes to `values` (optional; plaintext
   * aggregators: the values). Lets a member whose encode step already has its decoded payloads skip decoding them.
   */
  fromDecoded?: (values: Float32Array) => T
}

/** `aggregator.decodeResultInto`, or `decodeResult` and a copy. */
export function decodeResultInto (aggregator: PartAggregator<any>, payload: Uint8Array, out: Float32Array): void {
  if (aggregator.decodeResultInto != null) { aggregator.decodeResultInto(payload, out); return }
  const values = aggregator.decodeResult(payload, out.length)
  if (values.length !== out.length) throw new InvalidMessageError(`part result: decodes to ${values.length} values, the part has ${out.length}`)
  out.set(values)
}

/** Slack for codec headers (scales, lengths) on top of the fp32 size. */
const CODEC_SLACK_BYTES = 4096

/**
 * A plaintext aggregator: contributions and results are `codec`-encoded floats, reduced with `rule`.
 * Both directions go through the codec, so a lossy codec compresses the upload and the download.
 */
export function plaintextAggregator (codec: VectorCodec, rule: CombineRule = weightedMean): PartAggregator<Float32Array> {
  const decodeExact = (payload: Uint8Array, elements: number, what: string): Float32Array => {
    const values = codec.decode(payload)
    if (values.length !== elements) throw new InvalidMessageError(`${what}: decodes to ${values.length} values, the part has ${elements}`)
    return values
  }
  const maxBytes = (elements: number): number => elements * 4 + CODEC_SLACK_BYTES
  return {
    id: `${rule.id}/${codec.id}`,
    encodeContribution: (values) => codec.encode(values),
    maxContributionBytes: maxBytes,
    decodeCopies: true,
    decodeContribution: (payload, elements) => decodeExact(payload, elements, 'contribution'),
    decodeContributionInto: (payload, out) => { decodeInto(codec, payload, out, 'contribution'); return out },
    async reduce (contributions, elements, into) {
      // Straight into the caller's place for the result when it has one: nothing reads it until this returns.
      const out = into?.length === elements ? into : new Float32Array(elements)
      let meta: PartMeta | undefined
      for (let at = 0; ; at += COMBINE_BLOCK) {
        const end = Math.min(elements, at + COMBINE_BLOCK)
        const block = contributions.map(c => ({ peer: c.peer, weight: c.weight, values: c.value.subarray(at, end) }))
        if (rule.combineInto != null) {
          const m = rule.combineInto(block, out.subarray(at, end))
          meta ??= m
        } else {
          const combined = rule.combine(block)
          out.set(combined.values, at)
          meta ??= combined.meta
        }
        if (end >= elements) break
        await yieldToEventLoop()
      }
      // The result as every member will decode it, made in the encoding pass, in place of the floats it encodes.
      const payload = encodeDecoded(codec, out, out)
      return { payload, meta, decoded: out }
    },
    maxResultBytes: maxBytes,
    decodeResult: (payload, elements) => decodeExact(payload, elements, 'part result'),
    decodeResultInto: (payload, out) => { decodeInto(codec, payload, out, 'part result') },
    fromDecoded: (values) => values
  }
}
