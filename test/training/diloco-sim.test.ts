import assert from 'node:assert/strict'
import { selectBackend } from '../../node/training/backend.ts'
import { buildModel } from '../../node/training/models.ts'
import { parseModelSpec, InvalidSpecError } from '../../node/training/model-spec.ts'
import { flattenWeights } from '../../node/training/weights.ts'
import { evaluate, trainLocal } from '../../node/training/local-trainer.ts'
import { OuterOptimizer, averagePseudoGradients, weightsHash } from '../../node/training/outer-optimizer.ts'
import { loadMnist, sliceSamples } from '../../node/training/data/mnist.ts'

describe('model specs', () => {
  it('rejects a malformed spec naming the bad field', () => {
    assert.throws(() => parseModelSpec({ kind: 'mlp', inputs: 784, hidden: [-3], classes: 10 }), (e: Error) => e instanceof InvalidSpecError && /hidden\.0/.test(e.message))
    assert.throws(() => parseModelSpec({ kind: 'char-transformer', vocab: 64, context: 32, dModel: 30, heads: 4, layers: 1 }), /heads: dModel must be divisible/)
  })
  it('builds identical seeded weights for the same seed', async () => {
    await selectBackend({ force: 'wasm' })
    const spec = parseModelSpec({ kind: 'mlp', inputs: 20, hidden: [8], classes: 3 })
    assert.equal(weightsHash(flattenWeights(buildModel(spec, 5))), weightsHash(flattenWeights(buildModel(spec, 5))))
    assert.notEqual(weightsHash(flattenWeights(buildModel(spec, 5))), weightsHash(flattenWeights(buildModel(spec, 6))))
  })
})

describe('DiLoCo in-process simulation (small)', function () {
  this.timeout(300_000)
  it('4 peers on disjoint MNIST shards reach useful held-out accuracy', async () => {
    await selectBackend({ force: 'wasm' })
    const { train, test } = loadMnist({ train: 8000, seed: 1 })
    const spec = parseModelSpec({ kind: 'mlp', inputs: 784, hidden: [64], classes: 10 })
    const model = buildModel(spec, 42)
    let global = flattenWeights(model)
    const outer = new OuterOptimizer({ lr: 0.7, momentum: 0.9, nesterov: true })
    const shards = [0, 1, 2, 3].map(i => sliceSamples(train, i * 2000, (i + 1) * 2000))
    const before = evaluate(model, global, test)
    for (let round = 0; round < 4; round++) {
      const contribs = []
      for (let p = 0; p < 4; p++) {
        const r = await trainLocal(model, global, shards[p], { steps: 20, lr: 2e-3, weightDecay: 0.01, batchSize: 64, seed: round * 100 + p })
        contribs.push({ peerId: `p${p}`, pseudoGradient: r.pseudoGradient, samples: r.samples })
      }
      global = outer.step(global, averagePseudoGradients(contribs))
    }
    const acc = evaluate(model, global, test)
    console.log(`      held-out accuracy ${before.toFixed(3)} -> ${acc.toFixed(3)}`)
    assert.ok(acc > 0.85, `accuracy ${acc}`)
  })
})
