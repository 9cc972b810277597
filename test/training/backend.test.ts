import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { BackendUnavailableError, selectBackend } from '../../node/training/backend.ts'

describe('training backend selection', () => {
  it('picks wasm here and says why the native backends are absent', async () => {
    const choice = await selectBackend()
    assert.equal(choice.name, 'wasm')
    assert.equal(tf.getBackend(), 'wasm')
    assert.deepEqual(choice.tried.map(t => t.name), ['tfjs-node-gpu', 'tfjs-node'])
    for (const t of choice.tried) assert.ok(t.error.length > 0)
    assert.match(choice.reason, /unavailable/)
  })

  it('forcing tfjs-node fails with a clear error', async () => {
    await assert.rejects(selectBackend({ force: 'tfjs-node' }), (e: Error) => e instanceof BackendUnavailableError && /tfjs-node is not available/.test(e.message))
  })

  it('forcing cpu works', async () => {
    assert.equal((await selectBackend({ force: 'cpu' })).name, 'cpu')
    await selectBackend({ force: 'wasm' })
  })
})
