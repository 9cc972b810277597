import assert from 'node:assert/strict'
import { BufferPool } from '../../node/memory/buffer-pool.ts'
import { codecFor, updateEncoder, type CodecId } from '../../node/compression/index.ts'

const KB = 1024

describe('BufferPool', () => {
  it('hands back a buffer given back, of the same size only, and never the same one twice', () => {
    const pool = new BufferPool()
    const a = pool.bytes(256 * KB)
    pool.release(a)
    pool.release(a) // twice: ignored
    assert.equal(pool.retainedBytes, 256 * KB)
    assert.notEqual(pool.bytes(128 * KB).buffer, a.buffer)
    const b = pool.bytes(256 * KB)
    assert.equal(b.buffer, a.buffer)
    const c = pool.bytes(256 * KB)
    assert.notEqual(c.buffer, a.buffer)
    assert.equal(pool.stats.reused, 1)
  })

  it('keeps only whole buffers it made, at least 64 KiB', () => {
    const pool = new BufferPool()
    pool.release(new Uint8Array(256 * KB)) // not made here
    const small = pool.bytes(1 * KB)
    pool.release(small)
    const big = pool.floats(64 * KB)
    pool.release(big.subarray(1)) // a view, not the whole buffer
    assert.equal(pool.retainedBytes, 0)
    pool.release(big)
    assert.equal(pool.retainedBytes, 256 * KB)
  })

  it('drops the oldest buffers beyond its bound', () => {
    const pool = new BufferPool({ maxRetainedBytes: 512 * KB })
    const bufs = [pool.bytes(256 * KB), pool.bytes(256 * KB), pool.bytes(256 * KB)]
    for (const b of bufs) pool.release(b)
    assert.equal(pool.retainedBytes, 512 * KB)
    assert.equal(pool.stats.dropped, 1)
    const again = [pool.bytes(256 * KB), pool.bytes(256 * KB)].map(b => b.buffer)
    assert.ok(again.includes(bufs[1].buffer) && again.includes(bufs[2].buffer))
    assert.ok(!again.includes(bufs[0].buffer))
  })
})

describe('the encode step over a pool', () => {
  for (const id of ['fp16', 'int8', 'none'] as CodecId[]) {
    it(`${id}: gives the same payloads, decoded values and carry, round after round, as without a pool`, () => {
      const n = 200_000
      const parts = { offsets: [0, 70_000, 140_000], lengths: [70_000, 70_000, 60_000] }
      const plain = updateEncoder(codecFor(id))
      const pool = new BufferPool()
      const pooled = updateEncoder(codecFor(id), { pool })
      let x = 12345
      for (let round = 0; round < 5; round++) {
        const update = new Float32Array(n)
        for (let i = 0; i < n; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; update[i] = (x / 2 ** 32 - 0.5) * (i % 101 === 0 ? 3 : 0.02) }
        const a = plain.encode(update, parts)
        const b = pooled.encode(update, parts)
        assert.equal(b.payloads.length, a.payloads.length)
        b.payloads.forEach((p, k) => { assert.ok(Buffer.from(p).equals(Buffer.from(a.payloads[k])), `round ${round} part ${k}`) })
        if (a.decoded != null) assert.ok(Buffer.from(b.decoded!.buffer).equals(Buffer.from(a.decoded.buffer)), `round ${round} decoded`)
        // Round 2 fails (no commit): the carry must stay that of round 1 for round 3.
        if (round !== 2) { a.commit(); b.commit() }
        b.release()
      }
      // The pool served later rounds from memory given back by earlier ones.
      assert.ok(pool.stats.reused > 0)
    })
  }
})
