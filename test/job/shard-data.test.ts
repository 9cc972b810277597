/** The job's data on a peer: shards decoded from IPFS and viewed in the model's input shape. */
import assert from 'node:assert/strict'
import type { Host } from '../../node/network/host.ts'
import { addDataset } from '../../node/storage/datasets.ts'
import { IncompatibleDataError, ShardData } from '../../node/job/shard-data.ts'
import { startHost, stopAll } from '../storage/helpers.ts'

describe('job: shard data', function () {
  this.timeout(60_000)
  let host: Host
  let cid: string
  before(async () => {
    host = await startHost()
    // The bundled MNIST digits: csv rows whose format declares the image shape [28, 28, 1].
    cid = (await addDataset(host.helia, 'mnist:200', { name: 'mnist', license: 'CC-BY-SA-3.0', shards: 2, provide: false })).cid.toString()
  })
  after(async () => { await stopAll([host]) })

  it('views image samples flattened for an MLP, and all shards together', async () => {
    const data = await ShardData.open(host.helia, cid, { inputShape: [784], timeoutMs: 10_000 })
    assert.equal(data.shardCount, 2)
    const first = await data.shard(0)
    assert.deepEqual(first.featureShape, [784])
    assert.equal(first.count, 100)
    assert.equal(first.x.length, 100 * 784)
    const all = await data.all()
    assert.equal(all.count, 200)
    assert.deepEqual([...all.y.subarray(0, 100)], [...first.y])
  })

  it('keeps the declared shape for a CNN and refuses a model whose input does not fit, naming both shapes', async () => {
    const asImages = await ShardData.open(host.helia, cid, { inputShape: [28, 28, 1], timeoutMs: 10_000 })
    assert.deepEqual((await asImages.shard(1)).featureShape, [28, 28, 1])
    const wrong = await ShardData.open(host.helia, cid, { inputShape: [10], timeoutMs: 10_000 })
    await assert.rejects(wrong.shard(0), (err: Error) => err instanceof IncompatibleDataError && /\[28, 28, 1\]/.test(err.message) && /\[10\]/.test(err.message))
  })
})
