/**
 * A codec turns a float vector into bytes for the wire and back. The all-reduce sends every part of
 * every update through one; the job spec picks which (`none`, `fp16`, `int8`).
 * Lossy codecs are wrapped in error feedback by the round's encode step (update-encoder.ts), never by the codec.
 */
export type CodecId = 'none' | 'fp16' | 'int8'

export interface VectorCodec {
  readonly id: CodecId
  /** Encodes `values`; the result is self-describing enough for `decode` to recover the length. */
  encode (values: Float32Array): Uint8Array
  /** Decodes bytes made by `encode`; throws an InvalidMessageError on malformed input. */
  decode (bytes: Uint8Array): Float32Array
}
