/**
 * The inner loop of a DiLoCo round: H steps of AdamW (tfjs Adam + decoupled weight decay) from the global
 * weights, with a seeded batch order; returns the pseudo-gradient global - local.
 */
import * as tf from '@tensorflow/tfjs'
import { flattenWeights, setFlatWeights } from './weights.ts'

export interface Samples {
  /** count × prod(featureShape) feature values (token ids, for a language model). */
  x: Float32Array
  /** count × prod(labelShape) class labels in [0, numClasses). */
  y: Int32Array
  count: number
  featureShape: number[]
  numClasses: number
  /**
   * Shape of one sample's labels when it has more than one: [context] for a language model's
   * next-token targets, scored against logits [batch, ...labelShape, numClasses]. Absent: one label.
   */
  labelShape?: number[]
}

/** Labels per sample: prod(labelShape), 1 when absent. */
export function labelsPerSample (s: Pick<Samples, 'labelShape'>): number {
  return (s.labelShape ?? []).reduce((a, b) => a * b, 1)
}

/** Feature tensor in the dtype of the model's input (token-id models take int32). */
function inputTensor (model: tf.LayersModel, values: Float32Array, shape: number[]): tf.Tensor {
  const x = tf.tensor(values, shape)
  return model.inputs[0]?.dtype === 'int32' ? tf.cast(x, 'int32') : x
}

export interface InnerParams { steps: number, lr: number, weightDecay: number, batchSize: number, seed: number }
export interface LocalResult { pseudoGradient: Float32Array, samples: number, loss: number }

/** Mulberry32: small seeded PRNG for batch order. */
export function seededRandom (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Runs the inner steps; an abort of `opts.signal` stops them between two steps (rejecting with its reason). */
export async function trainLocal (model: tf.LayersModel, global: Float32Array, data: Samples, p: InnerParams, opts: { signal?: AbortSignal } = {}): Promise<LocalResult> {
  if (data.count === 0) throw new RangeError('no samples to train on')
  opts.signal?.throwIfAborted()
  setFlatWeights(model, global)
  const rand = seededRandom(p.seed)
  const perSample = data.featureShape.reduce((a, b) => a * b, 1)
  const optimizer = tf.train.adam(p.lr)
  const vars = model.trainableWeights.map(w => w.read() as tf.Variable)
  // Decay kernels only (not biases), the usual AdamW practice.
  const decayed = model.trainableWeights.filter(w => w.shape.length > 1).map(w => w.read() as tf.Variable)
  let order = shuffled(data.count, rand); let pos = 0
  let lossSum = 0; let processed = 0
  const perLabel = labelsPerSample(data)
  const xb = new Float32Array(p.batchSize * perSample); const yb = new Int32Array(p.batchSize * perLabel)
  try {
    for (let step = 0; step < p.steps; step++) {
      opts.signal?.throwIfAborted()
      const b = Math.min(p.batchSize, data.count)
      for (let i = 0; i < b; i++) {
        if (pos === order.length) { order = shuffled(data.count, rand); pos = 0 }
        const s = order[pos++]
        xb.set(data.x.subarray(s * perSample, (s + 1) * perSample), i * perSample)
        yb.set(data.y.subarray(s * perLabel, (s + 1) * perLabel), i * perLabel)
      }
      const loss = tf.tidy(() => {
        const x = inputTensor(model, xb.subarray(0, b * perSample), [b, ...data.featureShape])
        const y = tf.oneHot(tf.tensor(yb.subarray(0, b * perLabel), [b, ...(data.labelShape ?? [])], 'int32'), data.numClasses)
        const l = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true, vars)!
        for (const v of decayed) v.assign(v.mul(1 - p.lr * p.weightDecay))
        return l
      })
      lossSum += (await loss.data())[0]
      // Let the event loop run between steps: a peer's network (gossip, the all-reduce, bitswap) must keep
      // answering while it trains; the awaits above resolve as microtasks and never yield to I/O.
      await new Promise(resolve => setImmediate(resolve))
      loss.dispose()
      processed += b
    }
  } finally {
    optimizer.dispose()
  }
  const local = flattenWeights(model)
  const pseudoGradient = new Float32Array(global.length)
  for (let i = 0; i < global.length; i++) pseudoGradient[i] = global[i] - local[i]
  return { pseudoGradient, samples: processed, loss: lossSum / p.steps }
}

function shuffled (n: number, rand: () => number): Uint32Array {
  const a = new Uint32Array(n)
  for (let i = 0; i < n; i++) a[i] = i
  for (let i = n - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); const t = a[i]; a[i] = a[j]; a[j] = t }
  return a
}

export interface Evaluation { accuracy: number, loss: number, samples: number }

/**
 * Held-out evaluation: accuracy and mean softmax cross-entropy, predicted in batches. For sequence models
 * (samples with a labelShape, e.g. next-character targets) both are per predicted position.
 */
export function evaluateWithLoss (model: tf.LayersModel, weights: Float32Array, data: Samples, batchSize = 500): Evaluation {
  if (data.count === 0) throw new RangeError('no samples to evaluate on')
  setFlatWeights(model, weights)
  const per = data.featureShape.reduce((a, b) => a * b, 1)
  const labels = labelsPerSample(data)
  let correct = 0
  let lossSum = 0
  for (let start = 0; start < data.count; start += batchSize) {
    const n = Math.min(batchSize, data.count - start)
    const [pred, loss] = tf.tidy(() => {
      const x = inputTensor(model, data.x.subarray(start * per, (start + n) * per), [n, ...data.featureShape])
      const logits = (model.predict(x) as tf.Tensor).reshape([n * labels, data.numClasses])
      // One-hot as int32 then cast: the wasm backend's float32 oneHot is wrong (see trainLocal).
      const y = tf.oneHot(tf.tensor1d(data.y.subarray(start * labels, (start + n) * labels), 'int32'), data.numClasses).cast('float32')
      const l = tf.losses.softmaxCrossEntropy(y, logits, undefined, 0, tf.Reduction.SUM) // (weights, label smoothing, reduction)
      return [logits.argMax(-1).dataSync(), l.dataSync()[0]] as const
    })
    for (let i = 0; i < n * labels; i++) if (pred[i] === data.y[start * labels + i]) correct++
    lossSum += loss
  }
  const scored = data.count * labels
  return { accuracy: correct / scored, loss: lossSum / scored, samples: data.count }
}

/** Accuracy of `model` with flat weights `weights` on labelled samples (per position for sequence models). */
export function evaluate (model: tf.LayersModel, weights: Float32Array, data: Samples): number {
  return evaluateWithLoss(model, weights, data).accuracy
}
