/**
 * The production codecs (typed-array loops, bit tricks, a decode table) against straightforward per-value
 * references written here, independently, from the wire format's definition: the bytes and the decoded bits
 * must be identical, over random float32 bit patterns of every exponent and the edge values of each format.
 */
import assert from 'node:assert/strict'
import { decodeInto, encodeDecoded, fp16Codec, int8Codec, noneCodec, type VectorCodec } from '../../node/compression/index.ts'

const HEADER = 8

function header (tag: number, n: number, extra: number): Uint8Array {
  const out = new Uint8Array(HEADER + extra)
  out.set([0x4e, 0x56, 1, tag])
  new DataView(out.buffer).setUint32(4, n, true)
  return out
}

function bitsOf (x: number): number {
  const dv = new DataView(new ArrayBuffer(4))
  dv.setFloat32(0, x)
  return dv.getUint32(0)
}

/** Round half to even of a non-negative double. */
function roundHalfEven (q: number): number {
  const f = Math.floor(q)
  const d = q - f
  if (d > 0.5) return f + 1
  if (d < 0.5) return f
  return f % 2 === 0 ? f : f + 1
}

/** IEEE binary16 bits of a float32 value, by arithmetic on the value (not on its bits). */
function refToHalf (x: number): number {
  const sign = (bitsOf(x) >>> 31) === 1 ? 0x8000 : 0
  if (Number.isNaN(x)) return sign | 0x7e00
  const a = Math.abs(x)
  if (a >= 65520) return sign | 0x7c00 // 65504 + half a step: ties go to the even neighbour, 65536 (infinity)
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24) // subnormal (1024 is the smallest normal: right too)
  let e = -14
  while (2 ** (e + 1) <= a) e++
  let m = roundHalfEven(a / 2 ** (e - 10))
  if (m === 2048) { m = 1024; e++ }
  return sign | ((e + 15) << 10) | (m - 1024)
}

function refFromHalf (h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1
  const e = (h >> 10) & 31
  const m = h & 1023
  if (e === 31) return m === 0 ? sign * Infinity : NaN
  if (e === 0) return sign * m / 2 ** 24
  return sign * (1024 + m) * 2 ** (e - 25)
}

function refFp16Encode (v: Float32Array): Uint8Array {
  const out = header(1, v.length, 2 * v.length)
  const dv = new DataView(out.buffer)
  v.forEach((x, i) => { dv.setUint16(HEADER + 2 * i, refToHalf(x), true) })
  return out
}

function refFp16Decode (b: Uint8Array): Float32Array {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const n = dv.getUint32(4, true)
  return Float32Array.from({ length: n }, (_, i) => refFromHalf(dv.getUint16(HEADER + 2 * i, true)))
}

function refInt8Encode (v: Float32Array, chunk: number): Uint8Array {
  const chunks = Math.ceil(v.length / chunk)
  const out = header(2, v.length, 4 + 4 * chunks + v.length)
  const dv = new DataView(out.buffer)
  dv.setUint32(HEADER, chunk, true)
  for (let c = 0; c < chunks; c++) {
    const part = Array.from(v.subarray(c * chunk, (c + 1) * chunk))
    const max = part.reduce((m, x) => (Math.abs(x) > m ? Math.abs(x) : m), 0)
    const scale = Math.fround(max / 127)
    dv.setFloat32(HEADER + 4 + 4 * c, scale, true)
    part.forEach((x, i) => {
      const q = scale > 0 ? Math.min(127, Math.max(-127, Math.round(x * (1 / scale)))) : 0
      dv.setInt8(HEADER + 4 + 4 * chunks + c * chunk + i, Number.isNaN(q) ? 0 : q)
    })
  }
  return out
}

function refInt8Decode (b: Uint8Array): Float32Array {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const n = dv.getUint32(4, true)
  const chunk = dv.getUint32(HEADER, true)
  const chunks = Math.ceil(n / chunk)
  return Float32Array.from({ length: n }, (_, i) => dv.getInt8(HEADER + 4 + 4 * chunks + i) * dv.getFloat32(HEADER + 4 + 4 * Math.floor(i / chunk), true))
}

/** Deterministic pseudo-random u32s. */
function rng (seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s }
}

/** Random float32 bit patterns (every exponent, NaNs and infinities included), then edge values. */
function anyFloats (n: number, seed: number): Float32Array {
  const next = rng(seed)
  const out = new Float32Array(n)
  new Uint32Array(out.buffer).forEach((_, i, a) => { a[i] = next() })
  return out
}

/** Floats in the half range with mantissa tails that hit every rounding case. */
function halfRangeFloats (n: number, seed: number): Float32Array {
  const next = rng(seed)
  const bits = new Uint32Array(n)
  for (let i = 0; i < n; i++) {
    const exp = 100 + (next() % 45) // 2^-27 .. 2^17: subnormal halves to overflow
    const tail = [0, 0x1000, 0x0fff, 0x1001, 0x3000, next() & 0x1fff][next() % 6]
    bits[i] = ((next() & 1) << 31) | (exp << 23) | (next() & 0x7fe000) | tail
  }
  return new Float32Array(bits.buffer)
}

const EDGES = Float32Array.from([
  0, -0, 1, -1, 65504, -65504, 65519.99, 65520, 65536, 1e10, -1e10, Infinity, -Infinity, NaN,
  2 ** -14, 2 ** -24, 2 ** -25, 2 ** -25 * 1.0000001, 2 ** -26, 3 * 2 ** -25, 2 ** -149, -(2 ** -149), 2 ** -126,
  1 + 2 ** -11, 1 + 3 * 2 ** -11, 2048 + 1, 2048 + 3, 0.1, -0.3, 1 / 3
])

function sameBits (a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`)
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length)
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length)
  for (let i = 0; i < a.length; i++) {
    if (x[i] !== y[i]) assert.fail(`${what}: value ${i} is ${a[i]} (0x${x[i].toString(16)}), the reference gives ${b[i]} (0x${y[i].toString(16)})`)
  }
}

/** The same bytes at an odd offset in a larger buffer (a frame sliced out of a stream chunk). */
function misaligned (b: Uint8Array): Uint8Array {
  const buf = new Uint8Array(b.byteLength + 1)
  buf.set(b, 1)
  return buf.subarray(1)
}

/** encodeDecoded must give the encode bytes and the decode bits in one pass. */
function checkEncodeDecoded (c: VectorCodec, v: Float32Array): void {
  const decoded = new Float32Array(v.length)
  const bytes = encodeDecoded(c, v, decoded)
  assert.deepEqual(bytes, c.encode(v))
  sameBits(decoded, c.decode(bytes), `${c.id} encodeDecoded`)
  // In place: `decoded` may be the input itself.
  const inPlace = v.slice()
  assert.deepEqual(encodeDecoded(c, inPlace, inPlace), bytes)
  sameBits(inPlace, decoded, `${c.id} encodeDecoded in place`)
}

describe('codecs equal a straightforward reference', () => {
  const inputs = [EDGES, anyFloats(50_000, 7), halfRangeFloats(50_000, 11), anyFloats(1, 3), new Float32Array(0)]

  it('fp16 encodes to the reference bytes and decodes to the reference bits', () => {
    const c = fp16Codec()
    for (const v of inputs) {
      const bytes = c.encode(v)
      assert.deepEqual(bytes, refFp16Encode(v))
      // A subarray at an offset encodes the same.
      const shifted = new Float32Array(v.length + 3); shifted.set(v, 3)
      assert.deepEqual(c.encode(shifted.subarray(3)), bytes)
      checkEncodeDecoded(c, v)
    }
    // Decode: every one of the 65,536 halves, aligned and not, and into a given vector.
    const all = header(1, 65536, 2 * 65536)
    for (let h = 0; h < 65536; h++) new DataView(all.buffer).setUint16(HEADER + 2 * h, h, true)
    const expected = refFp16Decode(all)
    sameBits(c.decode(all), expected, 'fp16 decode')
    sameBits(c.decode(misaligned(all)), expected, 'fp16 decode at an odd offset')
    const into = new Float32Array(65536 + 2)
    decodeInto(c, all, into.subarray(1, 65537))
    sameBits(into.subarray(1, 65537), expected, 'fp16 decodeInto')
    assert.equal(into[0], 0)
    assert.equal(into[65537], 0)
    assert.throws(() => { decodeInto(c, all, new Float32Array(10)) }, /holds 65536 values/)
  })

  it('int8 encodes to the reference bytes and decodes to the reference bits', () => {
    const finite = (v: Float32Array): Float32Array => v.map(x => (Number.isFinite(x) ? x : 0.5))
    for (const chunk of [1, 7, 1024]) {
      const c = int8Codec({ chunkSize: chunk })
      for (const v of [...inputs.map(finite), Float32Array.from([NaN, 1, -2, 0.25])]) {
        const bytes = c.encode(v)
        assert.deepEqual(bytes, refInt8Encode(v, chunk), `chunk ${chunk}, ${v.length} values`)
        sameBits(c.decode(bytes), refInt8Decode(bytes), `int8 decode, chunk ${chunk}`)
        sameBits(c.decode(misaligned(bytes)), refInt8Decode(bytes), `int8 decode at an odd offset, chunk ${chunk}`)
        const into = new Float32Array(v.length)
        decodeInto(c, bytes, into)
        sameBits(into, refInt8Decode(bytes), 'int8 decodeInto')
        checkEncodeDecoded(c, v)
      }
      assert.throws(() => c.encode(Float32Array.from([1, Infinity])), RangeError)
      // x · (1/scale) is exactly 0.5 - 2^-54 here: Math.round gives 0, a plain floor(y + 0.5) would give 1.
      const nearHalf = Float32Array.from([0.013306038454174995, 0.00005238597805146128, -0.00005238597805146128])
      assert.equal(nearHalf[1] * (1 / Math.fround(nearHalf[0] / 127)), 0.49999999999999994)
      assert.deepEqual(int8Codec({ chunkSize: 3 }).encode(nearHalf), refInt8Encode(nearHalf, 3))
    }
  })

  it('none keeps every bit, aligned or not', () => {
    const c = noneCodec()
    for (const v of inputs) {
      const bytes = c.encode(v)
      const ref = header(0, v.length, 4 * v.length)
      v.forEach((x, i) => { new DataView(ref.buffer).setUint32(HEADER + 4 * i, new Uint32Array(v.buffer, v.byteOffset, v.length)[i], true) })
      assert.deepEqual(bytes, ref)
      sameBits(c.decode(bytes), v, 'none decode')
      sameBits(c.decode(misaligned(bytes)), v, 'none decode at an odd offset')
      checkEncodeDecoded(c, v)
    }
  })
})
