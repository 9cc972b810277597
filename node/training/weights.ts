/**
 * One flat Float32Array for a model's weights. Order: model.weights in Layers order (layer by layer,
 * kernel then bias), each tensor in row-major order. Non-trainable weights are included.
 */
import * as tf from '@tensorflow/tfjs'

export interface WeightLayout { names: string[], shapes: number[][], size: number }

export function weightLayout (model: tf.LayersModel): WeightLayout {
  const shapes = model.weights.map(w => w.shape as number[])
  return { names: model.weights.map(w => w.originalName), shapes, size: shapes.reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0) }
}

export function flattenWeights (model: tf.LayersModel): Float32Array {
  const layout = weightLayout(model)
  const out = new Float32Array(layout.size)
  let o = 0
  for (const w of model.weights) {
    const v = w.read().dataSync() as Float32Array
    out.set(v, o); o += v.length
  }
  return out
}

export function setFlatWeights (model: tf.LayersModel, flat: Float32Array): void {
  const layout = weightLayout(model)
  if (flat.length !== layout.size) throw new RangeError(`flat weights have ${flat.length} values, model needs ${layout.size}`)
  let o = 0
  const tensors = layout.shapes.map(shape => {
    const n = shape.reduce((a, b) => a * b, 1)
    const t = tf.tensor(flat.subarray(o, o + n), shape); o += n
    return t
  })
  model.setWeights(tensors)
  tf.dispose(tensors)
}
