/** Lossless codec: raw little-endian float32 after the header (copied as bytes where the machine is little-endian). */
import { InvalidMessageError } from '../../protocol/errors.ts'
import { freshBytes, type VectorCodec } from './codec.ts'
import { HEADER_BYTES, LITTLE_ENDIAN, expectSize, readHeader, writeHeader } from './header.ts'

function decodeFrame (bytes: Uint8Array, out: Float32Array | null): Float32Array {
  const n = readHeader(bytes, 'none')
  expectSize('none', bytes, HEADER_BYTES + n * 4)
  if (out == null) out = new Float32Array(n)
  else if (out.length !== n) throw new InvalidMessageError(`none: frame holds ${n} values, expected ${out.length}`)
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer, out.byteOffset, n * 4).set(bytes.subarray(HEADER_BYTES, HEADER_BYTES + n * 4))
  } else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    for (let i = 0; i < n; i++) out[i] = dv.getFloat32(HEADER_BYTES + i * 4, true)
  }
  return out
}

export function noneCodec (): VectorCodec {
  return {
    id: 'none',
    encode (values, alloc = freshBytes) {
      const out = alloc(HEADER_BYTES + values.length * 4)
      writeHeader(out, 'none', values.length)
      if (LITTLE_ENDIAN) {
        out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), HEADER_BYTES)
      } else {
        const dv = new DataView(out.buffer, out.byteOffset, out.byteLength)
        for (let i = 0; i < values.length; i++) dv.setFloat32(HEADER_BYTES + i * 4, values[i], true)
      }
      return out
    },
    encodeDecoded (values, decoded, alloc) {
      const out = this.encode(values, alloc)
      decodeFrame(out, decoded)
      return out
    },
    decode: (bytes) => decodeFrame(bytes, null),
    decodeInto: (bytes, out) => { decodeFrame(bytes, out) }
  }
}
