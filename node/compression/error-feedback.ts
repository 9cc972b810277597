/**
 * Error feedback for lossy codecs: what quantisation lost in one round is added to the next round's update,
 * so the error is carried forward instead of accumulating. The error is measured on exactly the parts the
 * all-reduce sends (the same partition, the same payload bytes), so nothing is approximated; it becomes the
 * carry only when the round's average is accepted (`commit`), so a round that failed is retried with the
 * same carry. Each part is encoded once, and what it decodes to comes out of the same pass (`decoded`).
 */
import { encodeDecoded, type VectorCodec } from './codec.ts'
import type { EncodedUpdate, PartLayout } from './update-encoder.ts'
import type { UpdateEncoder } from './update-encoder.ts'

export function errorFeedbackEncoder (codec: VectorCodec): UpdateEncoder {
  let carry: Float32Array | undefined
  return {
    codec,
    encode (update: Float32Array, parts: PartLayout): EncodedUpdate {
      const values = new Float32Array(update)
      if (carry?.length === update.length) {
        const c = carry
        for (let i = 0; i < update.length; i++) values[i] += c[i]
      }
      const decoded = new Float32Array(update.length)
      const payloads = parts.offsets.map((offset, k) => {
        const end = offset + parts.lengths[k]
        return encodeDecoded(codec, values.subarray(offset, end), decoded.subarray(offset, end))
      })
      return {
        values,
        payloads,
        decoded,
        commit: () => {
          // The carry: what each part lost (zero outside the parts).
          const residual = new Float32Array(update.length)
          parts.offsets.forEach((offset, k) => {
            for (let i = offset, end = offset + parts.lengths[k]; i < end; i++) residual[i] = values[i] - decoded[i]
          })
          carry = residual
        }
      }
    }
  }
}
