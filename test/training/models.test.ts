import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { modelArtifacts } from '../../node/storage/checkpoint-model.ts'
import { selectBackend, type BackendName } from '../../node/training/backend.ts'
import { decodeShard } from '../../node/training/data/decode-shard.ts'
import { evaluate, trainLocal, type Samples } from '../../node/training/local-trainer.ts'
import { parseModelSpec, type ModelSpec } from '../../node/training/model-spec.ts'
import { buildModel } from '../../node/training/models.ts'
import { flattenWeights, setFlatWeights } from '../../node/training/weights.ts'

const VOCAB = 'the casonm.\n'
const TINY = parseModelSpec({ kind: 'char-transformer', vocab: Array.from(VOCAB).length, context: 8, dModel: 16, heads: 2, layers: 1, mlpRatio: 2 })

function predict (model: tf.LayersModel, ids: number[][]): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor2d(ids, undefined, 'int32')) as tf.Tensor).dataSync() as Float32Array)
}

function maxAbsDiff (a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length)
  let d = 0
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]))
  return d
}

/** Mean next-token cross-entropy of `model` with `weights` on `data`. */
function lossOf (model: tf.LayersModel, weights: Float32Array, data: Samples): number {
  setFlatWeights(model, weights)
  return tf.tidy(() => {
    const x = tf.tensor(data.x, [data.count, ...data.featureShape], 'int32')
    const y = tf.oneHot(tf.tensor(data.y, [data.count, ...(data.labelShape ?? [])], 'int32'), data.numClasses)
    return tf.losses.softmaxCrossEntropy(y, model.predict(x) as tf.Tensor).dataSync()[0]
  })
}

function story (): Samples {
  const text = 'the cat sat on the mat.\n'.repeat(12)
  return decodeShard({ kind: 'text', encoding: 'utf-8' }, new TextEncoder().encode(text), { context: TINY.kind === 'char-transformer' ? TINY.context : 0, vocab: VOCAB, stride: 3 })
}

describe('training: models', function () {
  this.timeout(60_000)
  let before: string

  beforeEach(async () => { before = tf.getBackend(); await selectBackend({ force: 'cpu' }) })
  afterEach(async () => { await selectBackend({ force: before as BackendName }) })

  it('char-transformer: the same seed gives the same weights on every build, another seed others', () => {
    const a = flattenWeights(buildModel(TINY, 7))
    const b = flattenWeights(buildModel(TINY, 7))
    const c = flattenWeights(buildModel(TINY, 8))
    assert.ok(a.length > 1000)
    assert.equal(maxAbsDiff(a, b), 0)
    assert.ok(maxAbsDiff(a, c) > 0.01)
    assert.ok(a.some(v => v !== 0 && v !== 1), 'the weights are initialised, not constant')
  })

  it('char-transformer: int32 ids [batch, context] in, logits [batch, context, vocab] out', () => {
    const model = buildModel(TINY, 1)
    assert.equal(model.inputs[0].dtype, 'int32')
    assert.deepEqual(model.inputs[0].shape, [null, 8])
    const out = tf.tidy(() => model.predict(tf.zeros([3, 8], 'int32')) as tf.Tensor)
    assert.deepEqual(out.shape, [3, 8, Array.from(VOCAB).length])
    assert.ok(Array.from(out.dataSync()).every(Number.isFinite))
    out.dispose()
  })

  it('char-transformer: a position sees only itself and earlier positions (causal mask)', () => {
    const model = buildModel(parseModelSpec({ ...TINY, layers: 2 }), 3)
    const v = Array.from(VOCAB).length
    const base = [1, 2, 3, 4, 5, 6, 7, 8]
    const changed = [...base]; changed[5] = 0
    const a = predict(model, [base]); const b = predict(model, [changed])
    assert.ok(maxAbsDiff(a.subarray(0, 5 * v), b.subarray(0, 5 * v)) < 1e-6, 'positions 0..4 ignore token 5')
    assert.ok(maxAbsDiff(a.subarray(5 * v), b.subarray(5 * v)) > 1e-4, 'positions 5..7 see token 5')
    for (let t = 5; t < 8; t++) assert.ok(maxAbsDiff(a.subarray(t * v, (t + 1) * v), b.subarray(t * v, (t + 1) * v)) > 1e-4, `position ${t} sees token 5`)
  })

  it('char-transformer: trainLocal lowers the next-character loss on a repetitive text (cpu)', async () => {
    const data = story()
    assert.deepEqual(data.labelShape, [8])
    const model = buildModel(TINY, 5)
    const init = flattenWeights(model)
    const lossBefore = lossOf(model, init, data)
    const r = await trainLocal(model, init, data, { steps: 40, lr: 1e-2, weightDecay: 0, batchSize: 16, seed: 1 })
    const trained = init.map((w, i) => w - r.pseudoGradient[i])
    const lossAfter = lossOf(model, trained, data)
    assert.ok(lossBefore > 2, `an untrained model is near uniform (loss ${lossBefore})`)
    assert.ok(lossAfter < lossBefore / 3, `loss ${lossBefore.toFixed(3)} -> ${lossAfter.toFixed(3)}`)
    assert.ok(r.loss < lossBefore, 'the mean loss over the steps is below the initial loss')
    assert.ok(evaluate(model, trained, data) > 0.7, 'most next characters are predicted')
    assert.ok(evaluate(model, init, data) < 0.4)
  })

  it('char-transformer: wasm computes the same logits and gradients as cpu, and trains', async () => {
    const data = story()
    const batch = { ...data, count: 4, x: data.x.subarray(0, 32), y: data.y.subarray(0, 32) }
    const run = async (backend: BackendName): Promise<{ logits: Float32Array, grads: Float32Array[], lossBefore: number, lossAfter: number }> => {
      await selectBackend({ force: backend })
      const model = buildModel(TINY, 11)
      const init = flattenWeights(model)
      const logits = predict(model, [Array.from(batch.x.subarray(0, 8)), Array.from(batch.x.subarray(8, 16))])
      const vars = model.trainableWeights.map(w => w.read() as tf.Variable)
      const grads = tf.tidy(() => {
        const x = tf.tensor2d(batch.x, [4, 8], 'int32')
        const y = tf.oneHot(tf.tensor2d(batch.y, [4, 8], 'int32'), batch.numClasses)
        const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars)
        return vars.map(v => grads[v.name].dataSync() as Float32Array)
      })
      const r = await trainLocal(model, init, data, { steps: 5, lr: 1e-2, weightDecay: 0.01, batchSize: 8, seed: 2 })
      return { logits, grads, lossBefore: lossOf(model, init, data), lossAfter: lossOf(model, init.map((w, i) => w - r.pseudoGradient[i]), data) }
    }
    const cpu = await run('cpu')
    const wasm = await run('wasm')
    assert.ok(maxAbsDiff(cpu.logits, wasm.logits) < 1e-4, 'same forward pass')
    assert.equal(cpu.grads.length, wasm.grads.length)
    cpu.grads.forEach((g, i) => assert.ok(maxAbsDiff(g, wasm.grads[i]) < 1e-4, `gradient ${i} agrees`))
    assert.ok(cpu.grads.reduce((n, g) => n + g.filter(v => Math.abs(v) > 1e-3).length, 0) > 1000, 'gradients flow to most weights')
    assert.ok(wasm.lossAfter < wasm.lossBefore - 0.3, `five steps on wasm lower the loss: ${wasm.lossBefore.toFixed(3)} -> ${wasm.lossAfter.toFixed(3)}`)
  })

  it('char-transformer: survives a tfjs save and load with identical predictions', async () => {
    const model = buildModel(parseModelSpec({ ...TINY, layers: 2 }), 9)
    const artifacts = await modelArtifacts(model)
    const topology = JSON.stringify(artifacts.modelTopology)
    for (const cls of ['TokenPositionEmbedding', 'CausalSelfAttention', 'LayerNorm']) assert.ok(topology.includes(`"${cls}"`), cls)
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts))
    assert.equal(maxAbsDiff(flattenWeights(loaded), flattenWeights(model)), 0)
    const ids = [[0, 1, 2, 3, 4, 5, 6, 7], [7, 7, 1, 0, 2, 2, 3, 9]]
    assert.equal(maxAbsDiff(predict(loaded, ids), predict(model, ids)), 0)
    assert.equal(loaded.inputs[0].dtype, 'int32')
  })

  it('mlp: activation gelu is GELU, not relu', () => {
    const spec = (activation: string): ModelSpec => parseModelSpec({ kind: 'mlp', inputs: 3, hidden: [6], activation, classes: 2 })
    const gelu = buildModel(spec('gelu'), 4)
    const relu = buildModel(spec('relu'), 4)
    assert.equal(maxAbsDiff(flattenWeights(gelu), flattenWeights(relu)), 0, 'same seed, same weights')
    const xs = [[0.5, -1, 2], [-2, 0.3, 0.1], [1, 1, -1]]
    const [k1, b1, k2, b2] = gelu.getWeights().map(w => w.arraySync() as number[][] | number[])
    // GELU by its tanh approximation, independent of tfjs' erf: within 1e-3 of the exact x·Φ(x).
    const g = (h: number): number => 0.5 * h * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (h + 0.044715 * h ** 3)))
    const expected = xs.flatMap(x => {
      const hidden = (b1 as number[]).map((b, j) => g(b + x.reduce((s, xi, i) => s + xi * (k1 as number[][])[i][j], 0)))
      return (b2 as number[]).map((b, c) => b + hidden.reduce((s, h, j) => s + h * (k2 as number[][])[j][c], 0))
    })
    const out = tf.tidy(() => (gelu.predict(tf.tensor2d(xs)) as tf.Tensor).dataSync())
    assert.ok(maxAbsDiff(out, expected) < 1e-3)
    const reluOut = tf.tidy(() => (relu.predict(tf.tensor2d(xs)) as tf.Tensor).dataSync())
    assert.ok(maxAbsDiff(out, reluOut) > 1e-3)
  })
})
