/** Half-precision codec (IEEE 754 binary16, round to nearest even), 2 bytes a value. */
import type { VectorCodec } from './codec.ts'
import { HEADER_BYTES, expectSize, readHeader, writeHeader } from './header.ts'

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

export function toHalf (v: number): number {
  f32[0] = v
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0)
  let e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    let h = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const half = 1 << (shift - 1)
    if (rem > half || (rem === half && (h & 1) === 1)) h++
    return sign | h
  }
  let h = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++ // may carry into the exponent: still correct
  return sign | h
}

export function fromHalf (h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}

export function fp16Codec (): VectorCodec {
  return {
    id: 'fp16',
    encode (values) {
      const out = new Uint8Array(HEADER_BYTES + values.length * 2)
      writeHeader(out, 'fp16', values.length)
      for (let i = 0, o = HEADER_BYTES; i < values.length; i++, o += 2) {
        const h = toHalf(values[i])
        out[o] = h & 0xff
        out[o + 1] = h >>> 8
      }
      return out
    },
    decode (bytes) {
      const n = readHeader(bytes, 'fp16')
      expectSize('fp16', bytes, HEADER_BYTES + n * 2)
      const out = new Float32Array(n)
      for (let i = 0, o = HEADER_BYTES; i < n; i++, o += 2) out[i] = fromHalf(bytes[o] | (bytes[o + 1] << 8))
      return out
    }
  }
}
