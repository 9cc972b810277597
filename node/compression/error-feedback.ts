/**
 * Error feedback for lossy codecs: what quantisation lost in one round is added to the next round's update,
 * so the error is carried forward instead of accumulating. The error is measured on exactly the parts the
 * all-reduce sends (the same partition, the same payload bytes), so nothing is approximated; it becomes the
 * carry only when the round's average is accepted (`commit`), so a round that failed is retried with the
 * same carry.
 */
import type { VectorCodec } from './codec.ts'
import type { EncodedUpdate, PartLayout, UpdateEncoder } from './update-encoder.ts'

export function errorFeedbackEncoder (codec: VectorCodec): UpdateEncoder {
  let carry: Float32Array | undefined
  return {
    codec,
    encode (update: Float32Array, parts: PartLayout): EncodedUpdate {
      const values = new Float32Array(update)
      if (carry?.length === update.length) for (let i = 0; i < update.length; i++) values[i] += carry[i]
      const residual = new Float32Array(update.length)
      const payloads = parts.offsets.map((offset, k) => {
        const length = parts.lengths[k]
        const slice = values.subarray(offset, offset + length)
        const payload = codec.encode(slice)
        const decoded = codec.decode(payload)
        for (let i = 0; i < length; i++) residual[offset + i] = slice[i] - decoded[i]
        return payload
      })
      return { values, payloads, commit: () => { carry = residual } }
    }
  }
}
