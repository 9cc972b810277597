/**
 * Encode and decode throughput of the wire codecs (none, fp16, int8), production code against a
 * straightforward per-value reference written here (the codecs as they were first written: one value at a
 * time through a DataView or a scalar conversion), in the same run, on the same vectors.
 *
 *   node --import tsx benchmarks/codecs.ts                     # 4M floats (16 MB), best of 5
 *   node --import tsx benchmarks/codecs.ts --mb 64 --reps 3
 *
 * MB/s counts float32 input bytes (encode) or float32 output bytes (decode). Every production result is
 * checked bit for bit against the reference before it is timed.
 */
import { parseArgs } from 'node:util'
import { fp16Codec, int8Codec, noneCodec, type VectorCodec } from '../node/compression/index.ts'

const HEADER = 8
const CHUNK = 1024

function header (tag: number, n: number, extra: number): Uint8Array {
  const out = new Uint8Array(HEADER + extra)
  out.set([0x4e, 0x56, 1, tag])
  new DataView(out.buffer).setUint32(4, n, true)
  return out
}

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** Float to half bits, one value at a time, round to nearest even. */
function toHalf (v: number): number {
  f32[0] = v
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0)
  const e = exp - 112
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
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++
  return sign | h
}

function fromHalf (h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}

/** The reference codecs: same wire format, scalar loops. */
const reference: Record<'none' | 'fp16' | 'int8', Pick<VectorCodec, 'encode' | 'decode'>> = {
  none: {
    encode (v) {
      const out = header(0, v.length, v.length * 4)
      const dv = new DataView(out.buffer)
      for (let i = 0; i < v.length; i++) dv.setFloat32(HEADER + i * 4, v[i], true)
      return out
    },
    decode (b) {
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
      const out = new Float32Array(dv.getUint32(4, true))
      for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(HEADER + i * 4, true)
      return out
    }
  },
  fp16: {
    encode (v) {
      const out = header(1, v.length, v.length * 2)
      for (let i = 0, o = HEADER; i < v.length; i++, o += 2) { const h = toHalf(v[i]); out[o] = h & 0xff; out[o + 1] = h >>> 8 }
      return out
    },
    decode (b) {
      const out = new Float32Array(new DataView(b.buffer, b.byteOffset).getUint32(4, true))
      for (let i = 0, o = HEADER; i < out.length; i++, o += 2) out[i] = fromHalf(b[o] | (b[o + 1] << 8))
      return out
    }
  },
  int8: {
    encode (v) {
      const n = v.length
      const chunks = Math.ceil(n / CHUNK)
      const out = header(2, n, 4 + chunks * 4 + n)
      const dv = new DataView(out.buffer)
      dv.setUint32(HEADER, CHUNK, true)
      const q = new Int8Array(out.buffer, HEADER + 4 + chunks * 4, n)
      for (let c = 0; c < chunks; c++) {
        const end = Math.min(n, (c + 1) * CHUNK)
        let max = 0
        for (let i = c * CHUNK; i < end; i++) { const a = Math.abs(v[i]); if (a > max) max = a }
        const scale = Math.fround(max / 127)
        dv.setFloat32(HEADER + 4 + c * 4, scale, true)
        const inv = scale > 0 ? 1 / scale : 0
        for (let i = c * CHUNK; i < end; i++) { const r = Math.round(v[i] * inv); q[i] = r > 127 ? 127 : r < -127 ? -127 : r }
      }
      return out
    },
    decode (b) {
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
      const n = dv.getUint32(4, true)
      const chunks = Math.ceil(n / CHUNK)
      const qOff = HEADER + 4 + chunks * 4
      const out = new Float32Array(n)
      for (let c = 0; c < chunks; c++) {
        const scale = dv.getFloat32(HEADER + 4 + c * 4, true)
        const end = Math.min(n, (c + 1) * CHUNK)
        for (let i = c * CHUNK; i < end; i++) { const x = b[qOff + i]; out[i] = (x > 127 ? x - 256 : x) * scale }
      }
      return out
    }
  }
}

function bestMs (reps: number, fn: () => void): number {
  let best = Infinity
  for (let r = 0; r < reps; r++) {
    const t = performance.now()
    fn()
    best = Math.min(best, performance.now() - t)
  }
  return best
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
}

function main (): void {
  const { values } = parseArgs({ options: { mb: { type: 'string' }, reps: { type: 'string' } } })
  const mb = Number(values.mb ?? 16)
  const reps = Number(values.reps ?? 5)
  const n = Math.floor(mb * 1024 * 1024 / 4)
  // Gradient-like values: mostly small, a few large, some tiny enough to be half subnormals.
  const v = new Float32Array(n)
  let s = 12345
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    const u = s / 2 ** 32 - 0.5
    v[i] = i % 97 === 0 ? u * 10 : i % 89 === 0 ? u * 1e-6 : u * 0.01
  }
  const bytes = n * 4
  console.log(`codec throughput: ${n} floats (${mb} MB of float32), best of ${reps}, MB/s of float32 data`)
  console.log(['codec', 'encode ref', 'encode prod', 'x', 'decode ref', 'decode prod', 'x', 'same bits'].map((h, i) => h.padStart([6, 12, 13, 7, 12, 13, 7, 11][i])).join(''))
  const production: Record<string, VectorCodec> = { none: noneCodec(), fp16: fp16Codec(), int8: int8Codec({ chunkSize: CHUNK }) }
  for (const id of ['none', 'fp16', 'int8'] as const) {
    const ref = reference[id]
    const prod = production[id]
    const refBytes = ref.encode(v)
    const prodBytes = prod.encode(v)
    const refOut = ref.decode(refBytes)
    const prodOut = prod.decode(prodBytes)
    const same = sameBytes(refBytes, prodBytes) && sameBytes(new Uint8Array(refOut.buffer), new Uint8Array(prodOut.buffer))
    const encRef = bestMs(reps, () => { ref.encode(v) })
    const encProd = bestMs(reps, () => { prod.encode(v) })
    const decRef = bestMs(reps, () => { ref.decode(refBytes) })
    const decProd = bestMs(reps, () => { prod.decode(prodBytes) })
    const mbps = (ms: number): string => (bytes / 1024 / 1024 / (ms / 1000)).toFixed(0)
    console.log([id, mbps(encRef), mbps(encProd), (encRef / encProd).toFixed(1), mbps(decRef), mbps(decProd), (decRef / decProd).toFixed(1), same ? 'yes' : 'NO'].map((c, i) => c.padStart([6, 12, 13, 7, 12, 13, 7, 11][i])).join(''))
    if (!same) process.exitCode = 1
  }
  console.log('\nx: reference time / production time (same run, same vector). Reference: the per-value loops the codecs had before (benchmarks/codecs.ts).')
}

main()
