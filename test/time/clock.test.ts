import assert from 'node:assert/strict'
import { abortable, backoff, sleep, timeoutSignal, TimeoutError, withTimeout } from '../../node/time/clock.ts'

describe('time and cancellation helpers', () => {
  it('sleep resolves after its time, and rejects with the reason when its signal aborts (before or during)', async () => {
    const started = Date.now()
    await sleep(30)
    assert.ok(Date.now() - started >= 25)
    const before = new AbortController()
    before.abort(new Error('gone'))
    await assert.rejects(sleep(10, { signal: before.signal }), /gone/)
    const during = new AbortController()
    setTimeout(() => { during.abort(new Error('stopped')) }, 20)
    const t0 = Date.now()
    await assert.rejects(sleep(60_000, { signal: during.signal }), /stopped/)
    assert.ok(Date.now() - t0 < 5_000, 'the abort ended the wait at once')
  })

  it('backoff grows by the factor from the first retry, stops at the cap, and spreads within the jitter', () => {
    const doubling = { initialMs: 1000, maxMs: 16_000 }
    assert.deepEqual([1, 2, 3, 4, 5, 6, 40].map(a => backoff(a, doubling)), [1000, 2000, 4000, 8000, 16_000, 16_000, 16_000])
    assert.equal(backoff(10_000, { initialMs: 0, maxMs: 10 }), 0, 'no overflow to NaN')
    assert.equal(backoff(2, { initialMs: 100, maxMs: 10_000, factor: 3 }), 300)
    const jittered = { initialMs: 5_000, maxMs: 600_000, jitter: 0.2 }
    assert.equal(backoff(1, { ...jittered, random: () => 0 }), 4_000)
    assert.equal(backoff(1, { ...jittered, random: () => 0.5 }), 5_000)
    assert.equal(backoff(3, { ...jittered, random: () => 0.999999 }), 24_000)
  })

  it('timeoutSignal fires a TimeoutError after its time, or follows its parent; withTimeout bounds a signal', async () => {
    const t = timeoutSignal(20, 'too slow')
    await new Promise(resolve => { t.signal.addEventListener('abort', resolve, { once: true }) })
    assert.ok(t.signal.reason instanceof TimeoutError)
    const parent = new AbortController()
    const child = timeoutSignal(60_000, 'never', { signal: parent.signal })
    parent.abort(new Error('parent'))
    assert.equal((child.signal.reason as Error).message, 'parent')
    child.clear()
    const bounded = withTimeout(new AbortController().signal, 10)
    await new Promise(resolve => { bounded.addEventListener('abort', resolve, { once: true }) })
    assert.equal(bounded.aborted, true)
  })

  it('abortable releases the caller when the signal aborts, starts nothing once aborted, and passes results and errors through', async () => {
    assert.equal(await abortable(async () => 7), 7)
    await assert.rejects(abortable(async () => { throw new Error('failed') }, new AbortController().signal), /failed/)
    const c = new AbortController()
    setTimeout(() => { c.abort(new Error('cancelled')) }, 10)
    await assert.rejects(abortable(async () => await new Promise<number>(() => {}), c.signal), /cancelled/)
    let started = false
    await assert.rejects(abortable(async () => { started = true }, c.signal), /cancelled/)
    assert.equal(started, false, 'an aborted signal does not start the task')
  })
})
