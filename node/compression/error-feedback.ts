/**
 * Error feedback for lossy codecs: what quantisation lost in one round is added to the next round's update,
 * so the error is carried forward instead of accumulating. The error is measured on exactly the parts the
 * all-reduce sends (the same partition, the same payload bytes), so nothing is approximated; it becomes the
 * carry only when the round's average is accepted (`commit`), so a round that failed is retried with the
 * same carry. Each part is encoded once, and what it decodes to comes out of the same pass (`decoded`).
 *
 * With a pool, the round's arrays are reused from round to round: `values` becomes the carry in place at
 * `commit` (the old carry goes back to the pool), and `release` gives back the rest.
 */
import { encodeDecoded, type VectorCodec } from './codec.ts'
import { roundArrays, type BufferPool } from '../memory/buffer-pool.ts'
import type { EncodedUpdate, PartLayout, UpdateEncoder } from './update-encoder.ts'

export function errorFeedbackEncoder (codec: VectorCodec, pool?: BufferPool): UpdateEncoder {
  let carry: Float32Array | undefined
  const arrays = roundArrays(pool)
  return {
    codec,
    encode (update: Float32Array, parts: PartLayout): EncodedUpdate {
      const n = update.length
      const values = arrays.floats(n)
      if (carry?.length === n) {
        const c = carry
        for (let i = 0; i < n; i++) values[i] = update[i] + c[i]
      } else {
        values.set(update)
      }
      const decoded = arrays.floats(n)
      const payloads = parts.offsets.map((offset, k) => {
        const end = offset + parts.lengths[k]
        return encodeDecoded(codec, values.subarray(offset, end), decoded.subarray(offset, end), arrays.bytes)
      })
      let committed = false
      let released = false
      return {
        values,
        payloads,
        decoded,
        commit: () => {
          if (released) throw new Error('error feedback: commit after release (the arrays may already serve another round)')
          if (committed) return
          committed = true
          // The carry: what each part lost, zero outside the parts; written over `values`, which nothing reads
          // once the round's average is accepted.
          let next = 0
          const order = parts.offsets.map((offset, k) => ({ offset, length: parts.lengths[k] })).sort((a, b) => a.offset - b.offset)
          for (const { offset, length } of order) {
            if (offset > next) values.fill(0, next, offset)
            for (let i = offset, end = offset + length; i < end; i++) values[i] = values[i] - decoded[i]
            next = Math.max(next, offset + length)
          }
          if (next < n) values.fill(0, next)
          if (carry !== undefined) arrays.release(carry)
          carry = values
        },
        release: () => {
          if (released) return
          released = true
          arrays.release(decoded)
          for (const p of payloads) arrays.release(p)
          if (!committed) arrays.release(values)
        }
      }
    }
  }
}
