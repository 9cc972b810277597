/**
 * The encode step of a round: a peer's update, split into the parts of its all-reduce group, goes through
 * the job's codec once per part. What comes out is exactly what the all-reduce sends (the payload of each
 * part) and what it keeps for a part nobody could reduce (the values). Lossy codecs carry their error from
 * round to round (error-feedback.ts); the carry advances only when the round's average is accepted.
 *
 * With a {@link BufferPool}, the arrays of a round come from the pool and go back to it when the round is
 * over (`release`), so that the next round writes into memory already touched instead of fresh pages.
 */
import type { VectorCodec } from './codec.ts'
import { errorFeedbackEncoder } from './error-feedback.ts'
import { roundArrays, type BufferPool } from '../memory/buffer-pool.ts'

/** Where the parts of a vector lie: part i covers [offsets[i], offsets[i] + lengths[i]). */
export interface PartLayout {
  offsets: readonly number[]
  lengths: readonly number[]
}

export interface EncodedUpdate {
  /** The update the payloads encode (with the carried error added, under error feedback). */
  values: Float32Array
  /** Part i's payload, as the codec encodes part i of `values`: what goes on the wire, encoded once. */
  payloads: Uint8Array[]
  /**
   * What the payloads decode to, part after part at the parts' offsets (the codec's `decode`, bit for bit), when
   * the encode step has it without decoding again; the all-reduce then skips decoding this peer's own payloads.
   */
  decoded?: Float32Array
  /**
   * Makes this encoding's quantisation error the carry of the next round; call once its average is accepted,
   * before `release`. `values` may be overwritten by it.
   */
  commit: () => void
  /**
   * The round is over (its all-reduce settled, the exchange reported): `values`, `payloads` and `decoded` may be
   * reused by the next encode. Nothing may read them afterwards, nor any stream still send them.
   */
  release: () => void
}

export interface UpdateEncoder {
  readonly codec: VectorCodec
  encode: (update: Float32Array, parts: PartLayout) => EncodedUpdate
}

/** Each part through the codec, nothing carried (a lossless codec loses nothing worth carrying). */
export function plainEncoder (codec: VectorCodec, pool?: BufferPool): UpdateEncoder {
  const arrays = roundArrays(pool)
  return {
    codec,
    encode: (update, parts) => {
      const payloads = parts.offsets.map((offset, k) => codec.encode(update.subarray(offset, offset + parts.lengths[k]), arrays.bytes))
      return {
        values: update,
        payloads,
        commit: () => {},
        release: () => { for (const p of payloads) arrays.release(p) }
      }
    }
  }
}

/** The job's encode step: error feedback for lossy codecs (recommended), plain encoding for `none`. */
export function updateEncoder (codec: VectorCodec, opts: { errorFeedback?: boolean, pool?: BufferPool } = {}): UpdateEncoder {
  return (opts.errorFeedback ?? codec.id !== 'none') ? errorFeedbackEncoder(codec, opts.pool) : plainEncoder(codec, opts.pool)
}
