/**
 * A codec turns a float vector into bytes for the wire and back. The all-reduce sends every part of
 * every update through one; the job spec picks which (`none`, `fp16`, `int8`).
 * Lossy codecs are wrapped in error feedback by the round's encode step (update-encoder.ts), never by the codec.
 */
import { InvalidMessageError } from '../../protocol/errors.ts'

export type CodecId = 'none' | 'fp16' | 'int8'

export interface VectorCodec {
  readonly id: CodecId
  /**
   * Encodes `values`; the result is self-describing enough for `decode` to recover the length. `alloc`, when
   * given, makes the output buffer (a {@link ByteAllocator} over a pool); every byte of it is written.
   */
  encode (values: Float32Array, alloc?: ByteAllocator): Uint8Array
  /** Decodes bytes made by `encode`; throws an InvalidMessageError on malformed input. */
  decode (bytes: Uint8Array): Float32Array
  /**
   * Decodes into `out` (which must have exactly as many values as the frame holds, else InvalidMessageError),
   * writing the same bits `decode` returns, without allocating the result. Optional: {@link decodeInto} falls
   * back to `decode` and a copy.
   */
  decodeInto? (bytes: Uint8Array, out: Float32Array): void
  /**
   * Encodes `values` as `encode` does and writes into `decoded` (same length; may be `values` itself) what `decode` of the result
   * returns, bit for bit, in the same pass. Optional: {@link encodeDecoded} falls back to encode + decodeInto.
   */
  encodeDecoded? (values: Float32Array, decoded: Float32Array, alloc?: ByteAllocator): Uint8Array
}

/** Makes an output buffer of exactly `length` bytes, contents undefined (e.g. `BufferPool.bytes`). */
export type ByteAllocator = (length: number) => Uint8Array

/** A fresh zeroed buffer: what codecs use without an allocator. */
export const freshBytes: ByteAllocator = (length) => new Uint8Array(length)

/** `codec.decodeInto`, or `decode` and a copy for a codec without it. */
export function decodeInto (codec: VectorCodec, bytes: Uint8Array, out: Float32Array, what: string = codec.id): void {
  if (codec.decodeInto != null) { codec.decodeInto(bytes, out); return }
  const values = codec.decode(bytes)
  if (values.length !== out.length) throw new InvalidMessageError(`${what}: decodes to ${values.length} values, expected ${out.length}`)
  out.set(values)
}

/** `codec.encodeDecoded`, or `encode` then {@link decodeInto}. */
export function encodeDecoded (codec: VectorCodec, values: Float32Array, decoded: Float32Array, alloc?: ByteAllocator): Uint8Array {
  if (decoded.length !== values.length) throw new RangeError(`decoded has ${decoded.length} values, expected ${values.length}`)
  if (codec.encodeDecoded != null) return codec.encodeDecoded(values, decoded, alloc)
  const bytes = codec.encode(values, alloc)
  decodeInto(codec, bytes, decoded)
  return bytes
}
