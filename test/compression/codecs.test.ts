import assert from 'node:assert/strict'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { codecFor, errorFeedbackEncoder, fp16Codec, int8Codec, noneCodec, updateEncoder, type VectorCodec } from '../../node/compression/index.ts'

function randomVector (n: number, seed: number): Float32Array {
  let s = seed >>> 0
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; out[i] = (s / 2 ** 32 - 0.5) * 2 }
  return out
}

describe('compression codecs', () => {
  const v = randomVector(10_000, 1)

  it('none round-trips exactly', () => {
    assert.deepEqual(noneCodec().decode(noneCodec().encode(v)), v)
  })

  it('fp16 keeps relative error under 2^-11', () => {
    const d = fp16Codec().decode(fp16Codec().encode(v))
    for (let i = 0; i < v.length; i++) assert.ok(Math.abs(d[i] - v[i]) <= Math.abs(v[i]) * 2 ** -11 + 2 ** -24, `index ${i}`)
    assert.equal(fp16Codec().encode(v).byteLength, 8 + 2 * v.length)
  })

  it('int8 error is at most half a step of its chunk scale', () => {
    const c = int8Codec({ chunkSize: 256 })
    const d = c.decode(c.encode(v))
    for (let start = 0; start < v.length; start += 256) {
      let max = 0
      for (let i = start; i < Math.min(v.length, start + 256); i++) max = Math.max(max, Math.abs(v[i]))
      const step = max / 127
      for (let i = start; i < Math.min(v.length, start + 256); i++) assert.ok(Math.abs(d[i] - v[i]) <= step / 2 + 1e-7)
    }
    assert.deepEqual(c.decode(c.encode(new Float32Array(0))), new Float32Array(0))
  })

  it('rejects malformed frames', () => {
    for (const id of ['none', 'fp16', 'int8'] as const) {
      const c = codecFor(id)
      const good = c.encode(v.subarray(0, 100))
      assert.throws(() => c.decode(good.subarray(0, 5)), InvalidMessageError)
      assert.throws(() => c.decode(good.subarray(0, good.length - 1)), InvalidMessageError)
      const wrongVersion = good.slice(); wrongVersion[2] = 9
      assert.throws(() => c.decode(wrongVersion), InvalidMessageError)
      const other = codecFor(id === 'none' ? 'fp16' : 'none').encode(v.subarray(0, 100))
      assert.throws(() => c.decode(other), InvalidMessageError)
    }
  })

  it('error feedback keeps the running sum of decoded vectors close to the true sum', () => {
    const codec = int8Codec({ chunkSize: 1024 })
    const ef = errorFeedbackEncoder(codec)
    const n = 2048
    const whole = { offsets: [0], lengths: [n] }
    const trueSum = new Float64Array(n); const withEf = new Float64Array(n); const without = new Float64Array(n)
    for (let r = 0; r < 200; r++) {
      const x = randomVector(n, 100 + r)
      x[0] = 50 // one large value makes small ones round to zero without feedback
      for (let i = 1; i < n; i++) x[i] *= 0.1
      const encoded = ef.encode(x, whole)
      encoded.commit()
      const a = codec.decode(encoded.payloads[0]); const b = codec.decode(codec.encode(x))
      for (let i = 0; i < n; i++) { trueSum[i] += x[i]; withEf[i] += a[i]; without[i] += b[i] }
    }
    let errEf = 0; let errPlain = 0
    for (let i = 0; i < n; i++) { errEf += (withEf[i] - trueSum[i]) ** 2; errPlain += (without[i] - trueSum[i]) ** 2 }
    assert.ok(errEf * 20 < errPlain, `with feedback ${errEf}, without ${errPlain}`)
  })

  /** Rounds to whole numbers: a lossy codec whose error is known exactly. */
  const rounding: VectorCodec = {
    id: 'int8',
    encode: (v) => new Uint8Array(Int32Array.from(v, x => Math.round(x)).buffer),
    decode: (b) => Float32Array.from(new Int32Array(b.slice().buffer))
  }

  it('the encode step encodes each part once, and carries the committed error into the next encoding', () => {
    let encodes = 0
    const counting: VectorCodec = { ...rounding, encode: (v) => { encodes++; return rounding.encode(v) } }
    const ef = errorFeedbackEncoder(counting)
    const parts = { offsets: [0, 2], lengths: [2, 2] }
    const g = new Float32Array([0.75, -0.25, 0.5, 2.25])
    const first = ef.encode(g, parts)
    assert.equal(encodes, 2, 'one encoding per part')
    assert.deepEqual(first.payloads.map(p => [...rounding.decode(p)]), [[1, 0], [1, 2]])
    // Not committed (the round failed): the retry encodes the same values to the same bytes.
    const retry = ef.encode(g, parts)
    assert.deepEqual(retry.payloads, first.payloads)
    retry.commit()
    // Committed: the error of [0.75, -0.25, 0.5, 2.25] → [1, 0, 1, 2] is carried: [0.5, -0.5, 0, 2.5] → [1, 0, 0, 3].
    const second = ef.encode(g, parts)
    assert.deepEqual([...second.values], [0.5, -0.5, 0, 2.5])
    assert.deepEqual(second.payloads.map(p => [...rounding.decode(p)]), [[1, 0], [0, 3]])
    second.commit()
    assert.deepEqual([...ef.encode(g, parts).values], [0.25, -0.75, 0.5, 1.75])
  })

  it('the encode step of a lossless codec sends the update as it is and carries nothing', () => {
    const enc = updateEncoder(noneCodec())
    const g = randomVector(10, 3)
    const out = enc.encode(g, { offsets: [0, 4], lengths: [4, 6] })
    out.commit()
    assert.equal(out.values, g)
    assert.deepEqual(out.payloads.map(p => [...noneCodec().decode(p)]), [[...g.subarray(0, 4)], [...g.subarray(4)]])
    assert.equal(enc.encode(g, { offsets: [0], lengths: [10] }).values, g)
  })
})
