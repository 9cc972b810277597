import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import * as tf from '@tensorflow/tfjs'
import { selectBackend } from '../../node/training/backend.ts'
import { loadMnist, sliceSamples } from '../../node/training/data/mnist.ts'
import {
  deterministicWeightLayout, evaluateDeterministic, EvaluationInputError, UnsupportedEvaluationError, type DeterministicEvaluation
} from '../../node/training/deterministic-eval.ts'
import { evaluateWithLoss, seededRandom, type Samples } from '../../node/training/local-trainer.ts'
import { parseModelSpec, type ModelSpec } from '../../node/training/model-spec.ts'
import { buildModel } from '../../node/training/models.ts'
import { flattenWeights, weightLayout } from '../../node/training/weights.ts'
import { removeDir } from '../helpers/temp-dir.ts'

const MODULE = fileURLToPath(new URL('../../node/training/deterministic-eval.ts', import.meta.url))
const CHILD = fileURLToPath(new URL('./fixtures/deterministic-eval-child.ts', import.meta.url))

const bitsOf = (x: number): string => Buffer.from(new Float64Array([x]).buffer).toString('hex')

/** A model's initial weights moved by seeded noise, so that biases and norms are not their trivial values. */
function weightsFor (spec: ModelSpec, seed: number, noise = 0.05): Float32Array {
  const model = buildModel(spec, seed)
  const w = flattenWeights(model)
  model.dispose()
  const rand = seededRandom(seed + 17)
  for (let i = 0; i < w.length; i++) w[i] += (rand() - 0.5) * 2 * noise
  return w
}

function seededWeights (spec: ModelSpec, seed: number): Float32Array {
  const rand = seededRandom(seed)
  const size = deterministicWeightLayout(spec).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0)
  return Float32Array.from({ length: size }, () => (rand() - 0.5) * 0.6)
}

function randomFeatures (spec: Extract<ModelSpec, { kind: 'mlp' }>, count: number, seed: number): Samples {
  const rand = seededRandom(seed)
  const x = new Float32Array(count * spec.inputs)
  for (let i = 0; i < x.length; i++) x[i] = rand() < 0.3 ? 0 : rand() * 2 - 1
  const y = Int32Array.from({ length: count }, () => Math.floor(rand() * spec.classes))
  return { x, y, count, featureShape: [spec.inputs], numClasses: spec.classes }
}

function randomTokens (spec: Extract<ModelSpec, { kind: 'char-transformer' }>, count: number, seed: number): Samples {
  const rand = seededRandom(seed)
  const x = Float32Array.from({ length: count * spec.context }, () => Math.floor(rand() * spec.vocab))
  const y = Int32Array.from({ length: count * spec.context }, () => Math.floor(rand() * spec.vocab))
  return { x, y, count, featureShape: [spec.context], numClasses: spec.vocab, labelShape: [spec.context] }
}

/**
 * TensorFlow.js's own evaluation of a fresh model built from the spec and given the same weights: the held-out
 * evaluation the training peers log (evaluateWithLoss: accuracy and mean cross-entropy per label scored).
 */
function tfjsEvaluation (spec: ModelSpec, weights: Float32Array, data: Samples): { loss: number, accuracy: number } {
  const model = buildModel(spec, 999) // another seed: every weight comes from `weights`
  try {
    const { loss, accuracy } = evaluateWithLoss(model, weights, data, 7) // batches of 7: the sum over batches is checked too
    return { loss, accuracy }
  } finally {
    model.dispose()
  }
}

function assertClose (ours: DeterministicEvaluation, theirs: { loss: number, accuracy: number }, scored: number, what: string): void {
  const rel = Math.abs(ours.loss - theirs.loss) / Math.max(1, Math.abs(theirs.loss))
  assert.ok(rel < 1e-5, `${what}: loss ${ours.loss} vs tfjs ${theirs.loss} (relative difference ${rel})`)
  // float32 against float64 can flip an argmax between two logits that (nearly) tie: allow one label.
  assert.ok(Math.abs(ours.accuracy - theirs.accuracy) * scored <= 1 + 1e-9, `${what}: accuracy ${ours.accuracy} vs tfjs ${theirs.accuracy}`)
}

const MLPS: ModelSpec[] = [
  parseModelSpec({ kind: 'mlp', inputs: 20, hidden: [16, 12], activation: 'relu', classes: 5 }),
  parseModelSpec({ kind: 'mlp', inputs: 20, hidden: [16], activation: 'tanh', dropout: 0.3, classes: 4 }),
  parseModelSpec({ kind: 'mlp', inputs: 20, hidden: [16, 8], activation: 'gelu', classes: 3 }),
  parseModelSpec({ kind: 'mlp', inputs: 20, hidden: [10], activation: 'sigmoid', classes: 6 }),
  parseModelSpec({ kind: 'mlp', inputs: 20, hidden: [], classes: 2 })
]
const TRANSFORMER = parseModelSpec({ kind: 'char-transformer', vocab: 13, context: 8, dModel: 16, heads: 2, layers: 2, mlpRatio: 2 })
const MNIST_MLP = parseModelSpec({ kind: 'mlp', inputs: 784, hidden: [256, 128], activation: 'relu', classes: 10 })

describe('training: deterministic evaluation (pure-JS float64)', function () {
  this.timeout(120_000)

  before(async () => { await tf.setBackend('cpu') })

  it('reads the weights in the order and shapes of the models that models.ts builds', () => {
    for (const spec of [...MLPS, TRANSFORMER, MNIST_MLP]) {
      const model = buildModel(spec, 1)
      const tfjs = weightLayout(model)
      model.dispose()
      assert.deepEqual(deterministicWeightLayout(spec).map(w => w.shape), tfjs.shapes, `${spec.kind} ${JSON.stringify(spec)}`)
    }
  })

  it('agrees with TensorFlow.js\'s evaluation of a fresh model with the same weights (mlp: every activation, dropout)', () => {
    MLPS.forEach((spec, i) => {
      const weights = weightsFor(spec, 10 + i)
      const data = randomFeatures(spec as Extract<ModelSpec, { kind: 'mlp' }>, 300, 100 + i)
      const ours = evaluateDeterministic(spec, weights, data)
      assert.equal(ours.scored, 300)
      assertClose(ours, tfjsEvaluation(spec, weights, data), 300, `mlp ${spec.kind === 'mlp' ? spec.activation : ''} #${i}`)
    })
  })

  it('agrees with TensorFlow.js on real MNIST digits with the demo\'s MLP', () => {
    const { test } = loadMnist({ train: 9000, seed: 3 })
    const data = sliceSamples(test, 0, 400)
    const weights = weightsFor(MNIST_MLP, 1, 0.01)
    const ours = evaluateDeterministic(MNIST_MLP, weights, data)
    assertClose(ours, tfjsEvaluation(MNIST_MLP, weights, data), 400, 'mnist mlp')
  })

  it('agrees with TensorFlow.js for the char-transformer (attention, LayerNorm, GELU, per-position loss)', () => {
    const weights = weightsFor(TRANSFORMER, 4, 0.1)
    const data = randomTokens(TRANSFORMER as Extract<ModelSpec, { kind: 'char-transformer' }>, 40, 5)
    const ours = evaluateDeterministic(TRANSFORMER, weights, data)
    assert.equal(ours.scored, 40 * 8)
    assertClose(ours, tfjsEvaluation(TRANSFORMER, weights, data), 40 * 8, 'char-transformer')
  })

  it('gives the same bits on every run and under every TensorFlow.js backend, and does not use TensorFlow.js', async () => {
    const weights = weightsFor(MLPS[2], 7)
    const data = randomFeatures(MLPS[2] as Extract<ModelSpec, { kind: 'mlp' }>, 200, 8)
    const tWeights = weightsFor(TRANSFORMER, 9, 0.1)
    const tData = randomTokens(TRANSFORMER as Extract<ModelSpec, { kind: 'char-transformer' }>, 10, 9)
    const seen = new Set<string>()
    const backends: string[] = []
    for (const name of ['cpu', 'wasm'] as const) {
      await selectBackend({ force: name })
      backends.push(tf.getBackend())
      for (let run = 0; run < 3; run++) {
        const a = evaluateDeterministic(MLPS[2], weights, data)
        const b = evaluateDeterministic(TRANSFORMER, tWeights, tData)
        seen.add([a.loss, a.accuracy, b.loss, b.accuracy].map(bitsOf).join('/'))
      }
    }
    await tf.setBackend('cpu')
    assert.deepEqual(backends, ['cpu', 'wasm'])
    assert.equal(seen.size, 1, `different bits: ${[...seen].join(' | ')}`)
    // Its only imports are type imports (erased at run time): nothing here can reach a tfjs kernel.
    const imports = readFileSync(MODULE, 'utf8').split('\n').filter(l => /^\s*import\b/.test(l))
    assert.ok(imports.length > 0 && imports.every(l => /^import type /.test(l)), imports.join('\n'))
  })

  it('gives the same bits in a fresh process that never loaded TensorFlow.js, and the bits pinned for this engine', async () => {
    // Inputs from a seeded generator only (no tfjs initialiser), so the pinned bits depend on this module alone.
    const spec = MLPS[2]
    const weights = seededWeights(spec, 21)
    const data = randomFeatures(spec as Extract<ModelSpec, { kind: 'mlp' }>, 150, 22)
    const tWeights = seededWeights(TRANSFORMER, 23)
    const tData = randomTokens(TRANSFORMER as Extract<ModelSpec, { kind: 'char-transformer' }>, 6, 24)
    const here = [evaluateDeterministic(spec, weights, data), evaluateDeterministic(TRANSFORMER, tWeights, tData)].map(e => bitsOf(e.loss))
    const dir = await mkdtemp(join(tmpdir(), 'nearai-deval-'))
    try {
      const input = join(dir, 'input.json')
      const encode = (s: Samples): unknown => ({ ...s, x: Buffer.from(s.x.buffer).toString('base64'), y: Buffer.from(s.y.buffer).toString('base64') })
      await writeFile(input, JSON.stringify([
        { spec, weights: Buffer.from(weights.buffer).toString('base64'), data: encode(data) },
        { spec: TRANSFORMER, weights: Buffer.from(tWeights.buffer).toString('base64'), data: encode(tData) }
      ]))
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CHILD, input], { timeout: 60_000 })
      const child = JSON.parse(stdout) as { losses: string[], tfjsLoaded: boolean }
      assert.deepEqual(child.losses, here, 'a fresh process computes the same bits')
      assert.equal(child.tfjsLoaded, false, 'the child evaluated without loading TensorFlow.js')
    } finally {
      await removeDir(dir)
    }
    // Pinned: the loss bits of these two evaluations as Node 22's V8 computes them (recorded when this test
    // was written). Validators agree only if they all get these bits; an engine whose exp/log/tanh differ
    // fails here instead of dissenting on chain.
    assert.deepEqual(here, PINNED_LOSS_BITS)
  })

  it('refuses a cnn, weights of another size, non-finite weights and labels out of range, each with the reason', () => {
    const cnn = parseModelSpec({ kind: 'cnn', inputShape: [8, 8, 1], conv: [{ filters: 2, kernel: 3 }], classes: 3 })
    assert.throws(() => evaluateDeterministic(cnn, new Float32Array(10), randomFeatures(MLPS[0] as any, 2, 1)), (e: Error) => e instanceof UnsupportedEvaluationError && /cnn is not supported/.test(e.message))
    const spec = MLPS[0]
    const data = randomFeatures(spec as Extract<ModelSpec, { kind: 'mlp' }>, 5, 1)
    const weights = weightsFor(spec, 1)
    assert.throws(() => evaluateDeterministic(spec, weights.subarray(1), data), (e: Error) => e instanceof EvaluationInputError && /has \d+ weights, got/.test(e.message))
    const nan = weights.slice(); nan[3] = Number.NaN; nan[9] = Infinity
    assert.throws(() => evaluateDeterministic(spec, nan, data), (e: Error) => e instanceof EvaluationInputError && /2 of \d+ weights are not finite/.test(e.message))
    const bad = { ...data, y: Int32Array.from(data.y, (v, i) => i === 2 ? 9 : v) }
    assert.throws(() => evaluateDeterministic(spec, weights, bad), /sample 2: label 9 is outside 0..4/)
    assert.throws(() => evaluateDeterministic(spec, weights, { ...data, count: 0 }), /no samples/)
    assert.throws(() => evaluateDeterministic(MNIST_MLP, weightsFor(MNIST_MLP, 1), data), /samples have 20 features, the mlp takes 784/)
  })
})

// Recorded with Node v22.23.3 (V8 12.4) on x64, 2026-12-02; Node v20.20.2 (V8 11.3) computes the same bits.
const PINNED_LOSS_BITS = ['bc8c7e77c39ff13f', '181c1bff046e0440']
