/**
 * Codecs for the vectors the all-reduce moves, chosen by the job's codec id, and the round's encode step
 * (update-encoder.ts: per-part encoding with error feedback).
 */
import type { CodecId, VectorCodec } from './codec.ts'
import { fp16Codec } from './fp16.ts'
import { int8Codec } from './int8.ts'
import { noneCodec } from './none.ts'

export { decodeInto, encodeDecoded, type CodecId, type VectorCodec } from './codec.ts'
export { updateEncoder, plainEncoder, type UpdateEncoder, type EncodedUpdate, type PartLayout } from './update-encoder.ts'
export { errorFeedbackEncoder } from './error-feedback.ts'
export { noneCodec, fp16Codec, int8Codec }

export function codecFor (id: CodecId): VectorCodec {
  switch (id) {
    case 'none': return noneCodec()
    case 'fp16': return fp16Codec()
    case 'int8': return int8Codec()
    default: throw new RangeError(`unknown codec id ${String(id)}`)
  }
}
