/**
 * Symmetric int8 codec with one float32 scale per chunk (max |v| / 127), so one large value only
 * coarsens its own chunk. Layout after the header: u32 chunk size, then per chunk f32 scale + int8 values
 * (all scales first, then all values).
 *
 * The loops read and write typed arrays directly (the scales through a Float32Array view where the frame is
 * aligned), allocating nothing per element or per chunk.
 */
import { InvalidMessageError } from '../../protocol/errors.ts'
import { freshBytes, type ByteAllocator, type VectorCodec } from './codec.ts'
import { HEADER_BYTES, LITTLE_ENDIAN, expectSize, readHeader, writeHeader } from './header.ts'

export interface Int8CodecOptions { chunkSize?: number }

const SCALES_AT = HEADER_BYTES + 4

/** Reads the frame's layout; throws InvalidMessageError when it is malformed. */
function layout (bytes: Uint8Array): { n: number, cs: number, chunks: number, dv: DataView } {
  const n = readHeader(bytes, 'int8')
  if (bytes.byteLength < SCALES_AT) throw new InvalidMessageError('int8: frame lacks the chunk size')
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const cs = dv.getUint32(HEADER_BYTES, true)
  if (cs < 1 || cs > 1 << 20) throw new InvalidMessageError(`int8: bad chunk size ${cs}`)
  const chunks = Math.ceil(n / cs)
  expectSize('int8', bytes, SCALES_AT + chunks * 4 + n)
  return { n, cs, chunks, dv }
}

function decodeFrame (bytes: Uint8Array, out: Float32Array | null): Float32Array {
  const { n, cs, chunks, dv } = layout(bytes)
  if (out == null) out = new Float32Array(n)
  else if (out.length !== n) throw new InvalidMessageError(`int8: frame holds ${n} values, expected ${out.length}`)
  const qOff = SCALES_AT + chunks * 4
  const q = new Int8Array(bytes.buffer, bytes.byteOffset + qOff, n)
  for (let c = 0; c < chunks; c++) {
    const scale = dv.getFloat32(SCALES_AT + c * 4, true)
    if (!Number.isFinite(scale) || scale < 0) throw new InvalidMessageError(`int8: bad scale in chunk ${c}`)
    const end = Math.min(n, (c + 1) * cs)
    for (let i = c * cs; i < end; i++) out[i] = q[i] * scale
  }
  return out
}

export function int8Codec (options: Int8CodecOptions = {}): VectorCodec {
  const chunk = options.chunkSize ?? 1024
  if (!Number.isInteger(chunk) || chunk < 1 || chunk > 1 << 20) throw new RangeError(`int8 chunkSize must be an integer in [1, 2^20], got ${chunk}`)
  const encode = (values: Float32Array, decoded: Float32Array | null, alloc: ByteAllocator): Uint8Array => {
    const n = values.length
    const chunks = Math.ceil(n / chunk)
    const out = alloc(SCALES_AT + chunks * 4 + n)
    writeHeader(out, 'int8', n)
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength)
    dv.setUint32(HEADER_BYTES, chunk, true)
    const scales = LITTLE_ENDIAN && (out.byteOffset + SCALES_AT) % 4 === 0 ? new Float32Array(out.buffer, out.byteOffset + SCALES_AT, chunks) : null
    const q = new Int8Array(out.buffer, out.byteOffset + SCALES_AT + chunks * 4, n)
    for (let c = 0; c < chunks; c++) {
      const start = c * chunk
      const end = Math.min(n, start + chunk)
      let max = 0
      for (let i = start; i < end; i++) { const a = Math.abs(values[i]); if (a > max) max = a }
      // An infinite value is refused; a NaN never wins the comparison and encodes as 0 (as it always has).
      if (!Number.isFinite(max)) throw new RangeError('int8: cannot encode non-finite values')
      const scale = Math.fround(max / 127)
      if (scales != null) scales[c] = scale
      else dv.setFloat32(SCALES_AT + c * 4, scale, true)
      const inv = scale > 0 ? 1 / scale : 0
      for (let i = start; i < end; i++) {
        // Math.round(y), faster: floor(y + 0.5) is off only where y + 0.5 rounds up to an integer
        // (y = 0.5 - 2^-54), which the check puts back; ties still round up, as Math.round does.
        const y = values[i] * inv
        let r = Math.floor(y + 0.5)
        if (y < r - 0.5) r -= 1
        q[i] = r > 127 ? 127 : r < -127 ? -127 : r
      }
      // What decode gives back: the stored byte times the stored scale.
      if (decoded != null) for (let i = start; i < end; i++) decoded[i] = q[i] * scale
    }
    return out
  }
  return {
    id: 'int8',
    encode: (values, alloc = freshBytes) => encode(values, null, alloc),
    encodeDecoded: (values, decoded, alloc = freshBytes) => encode(values, decoded, alloc),
    decode: (bytes) => decodeFrame(bytes, null),
    decodeInto: (bytes, out) => { decodeFrame(bytes, out) }
  }
}
