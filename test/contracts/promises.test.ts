import assert from 'node:assert/strict'
import { world, TGAS } from './helpers.ts'

describe('harness: cross-contract promises executed as receipts', () => {
  it('promise_create + promise_then: the callback sees the callee result, the caller gets the callback result', async () => {
    const w = await world()
    const { value, outcome } = await w.call('alice.test', 'relay', { target: 'echo.test', method: 'echo', args: 'hello' }, { receiver: 'relay.test', gas: 100n * TGAS })
    assert.deepEqual(value, { ok: true, value: 'hello' })
    assert.deepEqual(outcome.receipts.map(r => r.executorId), ['relay.test', 'echo.test', 'relay.test'])
    assert.ok('SuccessReceiptId' in outcome.receipts[0].status)
    assert.equal(outcome.receipts[2].predecessorId, 'relay.test')
  })

  it('a failing callee reaches the callback as a failed promise result', async () => {
    const w = await world()
    const { value, outcome } = await w.call('alice.test', 'relay', { target: 'echo.test', method: 'fail', args: '' }, { receiver: 'relay.test' })
    assert.deepEqual(value, { ok: false, value: '' })
    assert.ok('Failure' in outcome.receipts[1].status)
    assert.match(JSON.stringify(outcome.receipts[1].status), /fail was called/)
  })

  it('promise_batch function calls joined by promise_and: the callback sees both results in order', async () => {
    const w = await world()
    const { value, outcome } = await w.call('alice.test', 'relay_both', { target: 'echo.test' }, { receiver: 'relay.test', gas: 100n * TGAS })
    assert.deepEqual(value, ['first', 'second'])
    assert.deepEqual(outcome.receipts.map(r => r.executorId), ['relay.test', 'echo.test', 'echo.test', 'relay.test'])
  })

  it('a call to a missing account fails that receipt only', async () => {
    const w = await world()
    const { value } = await w.call('alice.test', 'relay', { target: 'ghost.test', method: 'echo', args: 'x' }, { receiver: 'relay.test' })
    assert.equal(value.ok, false)
  })
})

describe('harness: host functions and panics', () => {
  it('sha256 through the host matches node:crypto', async () => {
    const { createHash } = await import('node:crypto')
    const w = await world()
    const { value } = await w.call('alice.test', 'sha256_hex', 'abc', { receiver: 'echo.test' })
    assert.equal(value, createHash('sha256').update(JSON.stringify('abc')).digest('hex'))
  })

  it('env.abort decodes the AssemblyScript message and location', async () => {
    const w = await world()
    await assert.rejects(w.call('alice.test', 'boom', {}, { receiver: 'echo.test' }), /boom from AssemblyScript, filename: .*relay\.ts.* line: \d+ col: \d+/)
  })

  it('a method the contract does not export fails with MethodNotFound', async () => {
    const w = await world()
    await assert.rejects(w.call('alice.test', 'no_such_method', {}), /MethodNotFound|MethodResolveError/)
  })
})
