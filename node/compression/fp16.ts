/**
 * Half-precision codec (IEEE 754 binary16, round to nearest even), 2 bytes a value, little-endian.
 *
 * The vector loops work on the bits: encode reads each float32 through a Uint32Array view and rounds normal
 * values with integer arithmetic (the rare subnormal, overflowing, infinite and NaN values go through
 * {@link toHalf}); decode looks each half up in a 65,536-entry table of float32 bit patterns made by
 * {@link fromHalf}, so it writes exactly the bits the per-value conversion would. No allocation per element.
 */
import { InvalidMessageError } from '../../protocol/errors.ts'
import { freshBytes, type ByteAllocator, type VectorCodec } from './codec.ts'
import { HEADER_BYTES, LITTLE_ENDIAN, expectSize, readHeader, writeHeader } from './header.ts'

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** One float to its half bits (the reference conversion; the vector loop below agrees with it bit for bit). */
export function toHalf (v: number): number {
  f32[0] = v
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0)
  const e = exp - 127 + 15
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

/** Float32 bit patterns of every half, made once on first use (256 KiB). */
let decodeTable: Uint32Array | undefined
function halfTable (): Uint32Array {
  if (decodeTable == null) {
    const values = new Float32Array(65536)
    for (let h = 0; h < 65536; h++) values[h] = fromHalf(h)
    decodeTable = new Uint32Array(values.buffer)
  }
  return decodeTable
}

/** |x| bits at or above this are 2^-14 and up: normal halves. */
const MIN_NORMAL_BITS = 113 << 23
/** |x| bits below this are under 2^16: no overflow before rounding. */
const OVERFLOW_BITS = 143 << 23
/** Re-biases the exponent (127 → 15) and adds the round-half-down part of round to nearest even. */
const REBIAS_ROUND = ((15 - 127) << 23) + 0xfff

/** Half bits of one float32 (given as bits). */
function halfOf (x: number): number {
  const abs = x & 0x7fffffff
  // Normal: round to nearest even in the integer domain; a carry out of the mantissa bumps the exponent, which
  // is the right result (up to infinity for values that round past 65504). The rest goes the slow way.
  if (abs >= MIN_NORMAL_BITS && abs < OVERFLOW_BITS) return ((abs + REBIAS_ROUND + ((abs >>> 13) & 1)) >>> 13) | ((x >>> 16) & 0x8000)
  return toHalfBits(x)
}

/**
 * Half bits of `src[i]` (float32 bits) into the frame from byte `at`; with `decoded`, also the float32 bits
 * decoding gives back.
 */
function encodeBits (src: Uint32Array, bytes: Uint8Array, at: number, decoded: Uint32Array | null): void {
  const n = src.length
  if (LITTLE_ENDIAN) {
    const dst = new Uint16Array(bytes.buffer, bytes.byteOffset + at, n)
    if (decoded == null) {
      for (let i = 0; i < n; i++) dst[i] = halfOf(src[i])
    } else {
      const table = halfTable()
      for (let i = 0; i < n; i++) { const h = halfOf(src[i]); dst[i] = h; decoded[i] = table[h] }
    }
    return
  }
  const table = halfTable()
  for (let i = 0; i < n; i++) {
    const h = halfOf(src[i])
    bytes[at + 2 * i] = h & 0xff
    bytes[at + 2 * i + 1] = h >>> 8
    if (decoded != null) decoded[i] = table[h]
  }
}

function toHalfBits (bits: number): number {
  u32[0] = bits
  return toHalf(f32[0])
}

/** Half bits `src` (2 bytes each, little-endian, from `at`) into `out` as float32 bits. */
function decodeBits (bytes: Uint8Array, at: number, out: Float32Array): void {
  const table = halfTable()
  const n = out.length
  const dst = new Uint32Array(out.buffer, out.byteOffset, n)
  if (LITTLE_ENDIAN && (bytes.byteOffset + at) % 2 === 0) {
    const src = new Uint16Array(bytes.buffer, bytes.byteOffset + at, n)
    for (let i = 0; i < n; i++) dst[i] = table[src[i]]
  } else {
    for (let i = 0, o = at; i < n; i++, o += 2) dst[i] = table[bytes[o] | (bytes[o + 1] << 8)]
  }
}

export function fp16Codec (): VectorCodec {
  const encode = (values: Float32Array, decoded: Float32Array | null, alloc: ByteAllocator): Uint8Array => {
    const n = values.length
    const out = alloc(HEADER_BYTES + n * 2)
    writeHeader(out, 'fp16', n)
    encodeBits(new Uint32Array(values.buffer, values.byteOffset, n), out, HEADER_BYTES, decoded == null ? null : new Uint32Array(decoded.buffer, decoded.byteOffset, n))
    return out
  }
  return {
    id: 'fp16',
    encode: (values, alloc = freshBytes) => encode(values, null, alloc),
    encodeDecoded: (values, decoded, alloc = freshBytes) => encode(values, decoded, alloc),
    decode (bytes) {
      const n = readHeader(bytes, 'fp16')
      expectSize('fp16', bytes, HEADER_BYTES + n * 2)
      const out = new Float32Array(n)
      decodeBits(bytes, HEADER_BYTES, out)
      return out
    },
    decodeInto (bytes, out) {
      const n = readHeader(bytes, 'fp16')
      expectSize('fp16', bytes, HEADER_BYTES + n * 2)
      if (n !== out.length) throw new InvalidMessageError(`fp16: frame holds ${n} values, expected ${out.length}`)
      decodeBits(bytes, HEADER_BYTES, out)
    }
  }
}
