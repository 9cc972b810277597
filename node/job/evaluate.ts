/**
 * Held-out evaluation: accuracy and mean softmax cross-entropy, in batches. For sequence models (samples with
 * a labelShape, e.g. next-character targets) both are per predicted position.
 */
import * as tf from '@tensorflow/tfjs'
import { setFlatWeights } from '../training/weights.ts'
import type { Samples } from '../training/local-trainer.ts'

export interface Evaluation { accuracy: number, loss: number, samples: number }

export function evaluateClassifier (model: tf.LayersModel, weights: Float32Array, data: Samples, batchSize = 500): Evaluation {
  if (data.count === 0) throw new RangeError('no samples to evaluate on')
  setFlatWeights(model, weights)
  const per = data.featureShape.reduce((a, b) => a * b, 1)
  const labels = (data.labelShape ?? []).reduce((a, b) => a * b, 1)
  const intInput = model.inputs[0]?.dtype === 'int32'
  let correct = 0
  let lossSum = 0
  for (let start = 0; start < data.count; start += batchSize) {
    const n = Math.min(batchSize, data.count - start)
    const [pred, loss] = tf.tidy(() => {
      const xs = data.x.subarray(start * per, (start + n) * per)
      const x = intInput ? tf.tensor(Int32Array.from(xs), [n, ...data.featureShape], 'int32') : tf.tensor(xs, [n, ...data.featureShape])
      const logits = (model.predict(x) as tf.Tensor).reshape([n * labels, data.numClasses])
      // One-hot as int32 then cast: the wasm backend's float32 oneHot is wrong (see training/local-trainer.ts).
      const y = tf.oneHot(tf.tensor1d(data.y.subarray(start * labels, (start + n) * labels), 'int32'), data.numClasses).cast('float32')
      const l = tf.losses.softmaxCrossEntropy(y, logits, undefined, tf.Reduction.SUM)
      return [logits.argMax(-1).dataSync(), l.dataSync()[0]] as const
    })
    for (let i = 0; i < n * labels; i++) if (pred[i] === data.y[start * labels + i]) correct++
    lossSum += loss
  }
  const scored = data.count * labels
  return { accuracy: correct / scored, loss: lossSum / scored, samples: data.count }
}
