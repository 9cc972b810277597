import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { selectBackend, type BackendName } from '../../node/training/backend.ts'
import { trainLocal, type Samples } from '../../node/training/local-trainer.ts'
import { parseModelSpec } from '../../node/training/model-spec.ts'
import { buildModel } from '../../node/training/models.ts'
import { weightsHash } from '../../node/training/outer-optimizer.ts'
import { flattenWeights } from '../../node/training/weights.ts'
import { WorkerTrainer } from '../../node/training/worker/trainer-worker.ts'

describe('training: the local trainer in a worker thread', function () {
  this.timeout(60_000)
  const spec = parseModelSpec({ kind: 'mlp', inputs: 16, hidden: [8], classes: 3 })
  const samples: Samples = {
    x: Float32Array.from({ length: 64 * 16 }, (_v, i) => Math.sin(i * 0.37)),
    y: Int32Array.from({ length: 64 }, (_v, i) => i % 3),
    count: 64,
    featureShape: [16],
    numClasses: 3
  }
  const params = { steps: 20, lr: 1e-2, weightDecay: 0.01, batchSize: 16, seed: 9 }
  let previous: string
  let worker: WorkerTrainer
  before(async () => {
    previous = tf.getBackend()
    await selectBackend({ force: 'wasm' })
    worker = new WorkerTrainer(spec, 3, 'wasm')
  })
  after(async () => {
    await worker?.close()
    await selectBackend({ force: previous as BackendName })
  })

  it('computes bit for bit what trainLocal computes on the main thread, leaving the caller its weights', async () => {
    assert.equal(await worker.backend, 'wasm')
    const model = buildModel(spec, 3)
    const global = flattenWeights(model)
    const copy = global.slice()
    const here = await trainLocal(model, global, samples, params)
    const there = await worker.train(global, samples, params)
    model.dispose()
    assert.equal(there.samples, here.samples)
    assert.equal(there.loss, here.loss)
    assert.equal(weightsHash(there.pseudoGradient), weightsHash(here.pseudoGradient))
    assert.ok(there.pseudoGradient.some(v => v !== 0))
    assert.deepEqual(global, copy, 'the starting weights were detached or changed')
    assert.equal(samples.x.length, 64 * 16, 'the samples were detached')
  })

  it('keeps the main thread free while it trains, and stops between steps when aborted', async () => {
    let ticks = 0
    const timer = setInterval(() => { ticks++ }, 1)
    const global = flattenWeights(buildModel(spec, 3))
    await worker.train(global, samples, { ...params, steps: 200 })
    clearInterval(timer)
    assert.ok(ticks > 0, 'no timer ran during the training')
    const controller = new AbortController()
    const run = worker.train(global, samples, { ...params, steps: 1_000_000 }, { signal: controller.signal })
    setTimeout(() => { controller.abort(new Error('enough')) }, 50)
    await assert.rejects(run, /enough/)
    // The worker is still usable afterwards.
    assert.equal((await worker.train(global, samples, params)).samples, 20 * 16)
  })
})
