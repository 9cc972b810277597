import assert from 'node:assert/strict'
import { ShardTrainer, type ShardSource } from '../../node/round/train-step.ts'
import { concatSamples } from '../../node/job/shard-data.ts'
import { assignShards } from '../../node/training/assignment.ts'
import type { Samples } from '../../node/training/local-trainer.ts'
import { parseModelSpec } from '../../node/training/model-spec.ts'
import { buildModel } from '../../node/training/models.ts'
import { flattenWeights } from '../../node/training/weights.ts'
import { silentLogger } from '../../node/log/logger.ts'

const SPEC = parseModelSpec({ kind: 'mlp', inputs: 4, hidden: [8], activation: 'relu', classes: 2 })

/** Four shards of 16 samples each (label = whether the first feature is positive); records which shards were read. */
function shardSource (): ShardSource & { reads: number[][] } {
  const shard = (k: number): Samples => {
    const x = Float32Array.from({ length: 16 * 4 }, (_v, i) => Math.sin(i * 1.7 + k))
    const y = Int32Array.from({ length: 16 }, (_v, i) => (x[i * 4] > 0 ? 1 : 0))
    return { x, y, count: 16, featureShape: [4], numClasses: 2 }
  }
  const source = {
    shardCount: 4,
    reads: [] as number[][],
    shards: async (indexes: number[]) => { source.reads.push(indexes); return indexes.length === 0 ? undefined : concatSamples(indexes.map(shard)) }
  }
  return source
}

describe('ShardTrainer (the train step)', () => {
  const model = buildModel(SPEC, 1)
  const weights = flattenWeights(model)
  const state = { round: 2, weights, momentum: new Float32Array(weights.length) }
  const peers = ['peer-a', 'peer-b', 'peer-c']
  after(() => { model.dispose() })

  it('trains on the shards assigned to this peer among the live peers, tells its pace, and reuses the update on a retry of the round', async () => {
    const data = shardSource()
    const paces: number[] = []
    const trainer = new ShardTrainer({ job: 'job', self: 'peer-b', data, model, inner: { steps: 3, lr: 1e-2, weightDecay: 0, batchSize: 8 }, seed: 5, livePeers: () => peers, pace: { observeTrainingTime: (ms) => { paces.push(ms) } }, logger: silentLogger() })
    const mine = assignShards({ jobId: 'job', round: 3, peerIds: peers, shardCount: 4 }).get('peer-b') ?? []
    const update = await trainer.train(state, 3, new AbortController().signal)
    assert.deepEqual(data.reads, [mine])
    assert.equal(update.samples, mine.length === 0 ? 0 : 3 * 8)
    assert.equal(update.pseudoGradient.length, weights.length)
    assert.equal(paces.length, 1)
    // The same round from the same state again (its group failed): nothing is fetched or trained again.
    assert.equal(await trainer.train(state, 3, new AbortController().signal), update)
    assert.equal(data.reads.length, 1)
    // Another round trains afresh.
    await trainer.train(state, 4, new AbortController().signal)
    assert.equal(data.reads.length, 2)
  })

  it('stops between inner steps when its signal aborts', async () => {
    const data = shardSource()
    const trainer = new ShardTrainer({ job: 'job', self: 'peer-a', data, model, inner: { steps: 100_000, lr: 1e-2, weightDecay: 0, batchSize: 8 }, seed: 5, livePeers: () => ['peer-a'], logger: silentLogger() })
    const controller = new AbortController()
    setTimeout(() => { controller.abort(new Error('shutting down')) }, 100)
    const started = Date.now()
    await assert.rejects(trainer.train(state, 0, controller.signal), /shutting down/)
    assert.ok(Date.now() - started < 30_000, 'it did not run its 100,000 steps')
  })
})
