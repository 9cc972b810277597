/**
 * Combine rules reduce the contributions to one part into the part's result. Two layers keep the wire
 * protocol fixed while rules change:
 *
 * - {@link CombineRule}: plaintext math over decoded floats (weighted mean now; trimmed mean or
 *   coordinate-wise median later).
 * - {@link PartAggregator}: what actually travels. The wire carries opaque payload bytes plus a weight;
 *   the aggregator encodes a member's part, checks and decodes what arrives, reduces, and encodes the
 *   result. {@link plaintextAggregator} puts a {@link VectorCodec} around a CombineRule; a homomorphic
 *   aggregator (CKKS, where the reducer only adds ciphertexts) implements the same interface.
 */
import type { VectorCodec } from '../compression/codec.ts'
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
export const weightedMean: CombineRule = {
  id: 'weighted-mean',
  combine (contributions) {
    const n = contributions[0]?.values.length ?? 0
    const acc = new Float64Array(n)
    let total = 0
    for (const c of inCanonicalOrder(contributions)) {
      if (c.values.length !== n) throw new InvalidMessageError(`contribution of ${c.peer} has ${c.values.length} values, expected ${n}`)
      const w = c.weight
      if (w === 0) continue
      total += w
      const v = c.values
      for (let j = 0; j < n; j++) acc[j] += w * v[j]
    }
    const out = new Float32Array(n)
    if (total > 0) for (let j = 0; j < n; j++) out[j] = acc[j] / total
    return { values: out, meta: { totalWeight: total } }
  }
}

export interface WireContribution<T> {
  peer: string
  weight: number
  /** What {@link PartAggregator.decodeContribution} made of the payload. */
  value: T
}

export interface ReducedPayload { payload: Uint8Array, meta?: PartMeta }

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
  /** Reduces one part; `contributions` come in canonical peer order. May take its time (it is awaited). */
  reduce: (contributions: ReadonlyArray<WireContribution<T>>, elements: number) => ReducedPayload | Promise<ReducedPayload>
  maxResultBytes: (elements: number) => number
  /** Decodes a part result received from its reducer (the reducer decodes its own the same way). */
  decodeResult: (payload: Uint8Array, elements: number) => Float32Array
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
    decodeContribution: (payload, elements) => decodeExact(payload, elements, 'contribution'),
    async reduce (contributions, elements) {
      const out = new Float32Array(elements)
      let meta: PartMeta | undefined
      for (let at = 0; ; at += COMBINE_BLOCK) {
        const end = Math.min(elements, at + COMBINE_BLOCK)
        const combined = rule.combine(contributions.map(c => ({ peer: c.peer, weight: c.weight, values: c.value.subarray(at, end) })))
        out.set(combined.values, at)
        meta ??= combined.meta
        if (end >= elements) break
        await yieldToEventLoop()
      }
      return { payload: codec.encode(out), meta }
    },
    maxResultBytes: maxBytes,
    decodeResult: (payload, elements) => decodeExact(payload, elements, 'part result')
  }
}
