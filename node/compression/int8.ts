/**
 * Symmetric int8 codec with one float32 scale per chunk (max |v| / 127), so one large value only
 * coarsens its own chunk. Layout after the header: u32 chunk size, then per chunk f32 scale + int8 values.
 */
import { InvalidMessageError } from '../../protocol/errors.ts'
import type { VectorCodec } from './codec.ts'
import { HEADER_BYTES, expectSize, readHeader, writeHeader } from './header.ts'

export interface Int8CodecOptions { chunkSize?: number }

export function int8Codec (options: Int8CodecOptions = {}): VectorCodec {
  const chunk = options.chunkSize ?? 1024
  if (!Number.isInteger(chunk) || chunk < 1 || chunk > 1 << 20) throw new RangeError(`int8 chunkSize must be an integer in [1, 2^20], got ${chunk}`)
  return {
    id: 'int8',
    encode (values) {
      const n = values.length
      const chunks = Math.ceil(n / chunk)
      const out = new Uint8Array(HEADER_BYTES + 4 + chunks * 4 + n)
      writeHeader(out, 'int8', n)
      const dv = new DataView(out.buffer)
      dv.setUint32(HEADER_BYTES, chunk, true)
      const q = new Int8Array(out.buffer, HEADER_BYTES + 4 + chunks * 4, n)
      for (let c = 0; c < chunks; c++) {
        const start = c * chunk
        const end = Math.min(n, start + chunk)
        let max = 0
        for (let i = start; i < end; i++) { const a = Math.abs(values[i]); if (a > max) max = a }
        if (!Number.isFinite(max)) throw new RangeError('int8: cannot encode non-finite values')
        const scale = Math.fround(max / 127)
        dv.setFloat32(HEADER_BYTES + 4 + c * 4, scale, true)
        const inv = scale > 0 ? 1 / scale : 0
        for (let i = start; i < end; i++) {
          const r = Math.round(values[i] * inv)
          q[i] = r > 127 ? 127 : r < -127 ? -127 : r
        }
      }
      return out
    },
    decode (bytes) {
      const n = readHeader(bytes, 'int8')
      if (bytes.byteLength < HEADER_BYTES + 4) throw new InvalidMessageError('int8: frame lacks the chunk size')
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      const cs = dv.getUint32(HEADER_BYTES, true)
      if (cs < 1 || cs > 1 << 20) throw new InvalidMessageError(`int8: bad chunk size ${cs}`)
      const chunks = Math.ceil(n / cs)
      expectSize('int8', bytes, HEADER_BYTES + 4 + chunks * 4 + n)
      const qOff = HEADER_BYTES + 4 + chunks * 4
      const out = new Float32Array(n)
      for (let c = 0; c < chunks; c++) {
        const scale = dv.getFloat32(HEADER_BYTES + 4 + c * 4, true)
        if (!Number.isFinite(scale) || scale < 0) throw new InvalidMessageError(`int8: bad scale in chunk ${c}`)
        const end = Math.min(n, (c + 1) * cs)
        for (let i = c * cs; i < end; i++) {
          const b = bytes[qOff + i]
          out[i] = (b > 127 ? b - 256 : b) * scale
        }
      }
      return out
    }
  }
}
