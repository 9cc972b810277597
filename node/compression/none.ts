/** Lossless codec: raw little-endian float32 after the header. */
import type { VectorCodec } from './codec.ts'
import { HEADER_BYTES, expectSize, readHeader, writeHeader } from './header.ts'

export function noneCodec (): VectorCodec {
  return {
    id: 'none',
    encode (values) {
      const out = new Uint8Array(HEADER_BYTES + values.length * 4)
      writeHeader(out, 'none', values.length)
      const dv = new DataView(out.buffer)
      for (let i = 0; i < values.length; i++) dv.setFloat32(HEADER_BYTES + i * 4, values[i], true)
      return out
    },
    decode (bytes) {
      const n = readHeader(bytes, 'none')
      expectSize('none', bytes, HEADER_BYTES + n * 4)
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      const out = new Float32Array(n)
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(HEADER_BYTES + i * 4, true)
      return out
    }
  }
}
