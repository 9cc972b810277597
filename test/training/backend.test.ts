import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { BackendUnavailableError, NATIVE_BACKENDS, isInstalled, selectBackend } from '../../node/training/backend.ts'

/**
 * The native backends (@tensorflow/tfjs-node, -gpu) are not installed with nearai; a user may add them. These
 * tests hold either way: what they expect follows from what `require.resolve` finds on this machine.
 */
describe('training backend selection', () => {
  const installed = Object.fromEntries(NATIVE_BACKENDS.map(name => [name, isInstalled(name)]))

  it(`picks the fastest backend that loads and says why faster ones were passed over (installed here: ${JSON.stringify(installed)})`, async () => {
    const choice = await selectBackend()
    const order = ['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu']
    // Every backend before the chosen one was tried and failed, in order; none after it was tried.
    assert.deepEqual(choice.tried.map(t => t.name), order.slice(0, order.indexOf(choice.name)))
    assert.equal(tf.getBackend(), choice.name === 'tfjs-node' || choice.name === 'tfjs-node-gpu' ? 'tensorflow' : choice.name)
    for (const t of choice.tried) {
      assert.ok(t.error.length > 0)
      if (!installed[t.name]) assert.equal(t.error, `not installed (npm install @tensorflow/${t.name} adds it)`)
    }
    // A package that is not installed is never chosen; without any, wasm is (it ships with nearai).
    if (!installed['tfjs-node-gpu']) assert.notEqual(choice.name, 'tfjs-node-gpu')
    if (!installed['tfjs-node']) assert.notEqual(choice.name, 'tfjs-node')
    if (!installed['tfjs-node-gpu'] && !installed['tfjs-node']) assert.equal(choice.name, 'wasm')
    assert.match(choice.reason, choice.tried.length === 0 ? /is the fastest available/ : /faster backends unavailable/)
  })

  for (const name of NATIVE_BACKENDS) {
    it(`forcing ${name} works when it loads and otherwise fails with a clear error`, async () => {
      try {
        const choice = await selectBackend({ force: name })
        assert.ok(installed[name], 'only an installed package can be forced')
        assert.equal(choice.name, name)
        assert.equal(tf.getBackend(), 'tensorflow')
      } catch (err) {
        assert.ok(err instanceof BackendUnavailableError, String(err))
        assert.match(err.message, new RegExp(`^backend ${name} is not available: `))
        if (!installed[name]) assert.equal(err.message, `backend ${name} is not available: not installed (npm install @tensorflow/${name} adds it)`)
      }
    })
  }

  it('forcing cpu works', async () => {
    assert.equal((await selectBackend({ force: 'cpu' })).name, 'cpu')
    await selectBackend({ force: 'wasm' })
  })
})
