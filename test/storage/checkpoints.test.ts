import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { unixfs } from '@helia/unixfs'
import all from 'it-all'
import type { Host } from '../../node/network/host.ts'
import { getCheckpoint, publishCheckpoint } from '../../node/storage/checkpoints.ts'
import { loadCheckpointModel, modelArtifacts } from '../../node/storage/checkpoint-model.ts'
import { ContentTooLargeError, HashMismatchError } from '../../node/storage/errors.ts'
import { startHost, stopAll } from './helpers.ts'

function buildModel (): tf.LayersModel {
  const model = tf.sequential()
  model.add(tf.layers.dense({ inputShape: [784], units: 32, activation: 'relu' }))
  model.add(tf.layers.dense({ units: 10, activation: 'softmax' }))
  return model
}

describe('storage: checkpoints', function () {
  this.timeout(120_000)
  let boot: Host, a: Host, c: Host

  before(async () => {
    await tf.setBackend('cpu')
    boot = await startHost()
    a = await startHost({ bootstrap: boot })
    c = await startHost({ bootstrap: boot })
  })

  after(async () => { await stopAll([c, a, boot]) })

  it('publishes on A, fetches on C, and tf.loadLayersModel gives the same weights', async () => {
    const model = buildModel()
    const momentum = new Float32Array(1000).map((_, i) => i / 1000)
    const published = await publishCheckpoint(a.helia, {
      artifacts: await modelArtifacts(model),
      job: 'mnist-mlp',
      round: 3,
      parent: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
      metrics: { loss: 0.42, accuracy: 0.91 },
      extraFiles: [{ path: 'outer-momentum.bin', role: 'diloco-outer-momentum', dtype: 'float32', shape: [1000], bytes: new Uint8Array(momentum.buffer) }],
      weightFileBytes: 64 * 1024 // several weight files, as tf.io writes for larger models
    })
    assert.ok(published.manifest.weights.files.length > 1)
    assert.equal(published.provided.failed.length, 0)

    const fetched = await getCheckpoint(c.helia, published.cid, { timeoutMs: 30_000, maxBytes: 10 * 1024 * 1024 })
    assert.equal(fetched.manifest.job, 'mnist-mlp')
    assert.equal(fetched.manifest.round, 3)
    assert.deepEqual(fetched.manifest.metrics, { loss: 0.42, accuracy: 0.91 })
    assert.deepEqual(new Float32Array(fetched.extraFiles.get('outer-momentum.bin')!.slice().buffer), momentum)

    const loaded = await loadCheckpointModel(fetched)
    const want = model.getWeights()
    const got = loaded.getWeights()
    assert.equal(got.length, want.length)
    for (let i = 0; i < want.length; i++) {
      assert.deepEqual(got[i].shape, want[i].shape)
      assert.deepEqual(await got[i].data(), await want[i].data())
    }
    const x = tf.randomNormal([2, 784])
    assert.deepEqual(await (loaded.predict(x) as tf.Tensor).data(), await (model.predict(x) as tf.Tensor).data())

    // The folder is TensorFlow.js's own layout: model.json's weights manifest names the files beside it.
    const names = []
    for await (const entry of unixfs(c.helia).ls(published.cid)) names.push(entry.name)
    assert.ok(names.includes('model.json') && names.includes('checkpoint.json') && names.includes('group1-shard1of' + String(published.manifest.weights.files.length) + '.bin'))
  })

  it('rejects a checkpoint whose weight file was swapped (hash check) and one over maxBytes', async () => {
    const published = await publishCheckpoint(a.helia, { artifacts: await modelArtifacts(buildModel()), job: 'mnist-mlp', round: 4, metrics: {} })
    const fs = unixfs(a.helia)
    const file = published.manifest.weights.files[0]
    const original = Buffer.concat(await all(fs.cat(published.cid, { path: file.path })))
    const tampered = Buffer.from(original)
    tampered[100] ^= 0xff
    // Same checkpoint.json and model.json, one weight file replaced: a new, self-consistent IPFS folder.
    const forged = await fs.cp(await fs.addBytes(tampered), published.cid, file.path, { force: true })
    await a.helia.routing.provide(forged) // the forger announces it like any checkpoint
    await assert.rejects(getCheckpoint(c.helia, forged, { timeoutMs: 30_000 }), (err: Error) => {
      assert.ok(err instanceof HashMismatchError, `${err.name}: ${err.message}`)
      assert.equal(err.cid, forged.toString())
      assert.match(err.message, new RegExp(file.path))
      return true
    })
    await assert.rejects(getCheckpoint(c.helia, published.cid, { timeoutMs: 30_000, maxBytes: 1000 }), ContentTooLargeError)
  })
})
