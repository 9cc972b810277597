/**
 * Builds tfjs Layers models from specs with seeded initialisers, so every peer starts from identical weights.
 * CNNs need a backend with Conv2DBackpropFilter (cpu or tfjs-node): wasm lacks it, checked by assertTrainable.
 */
import * as tf from '@tensorflow/tfjs'
import type { ModelSpec } from './model-spec.ts'

export class UnsupportedOnBackendError extends Error {
  override name = 'UnsupportedOnBackendError'
}

export function buildModel (spec: ModelSpec, seed: number): tf.LayersModel {
  let layerSeed = seed * 1000
  const init = (): ReturnType<typeof tf.initializers.glorotUniform> => tf.initializers.glorotUniform({ seed: layerSeed++ })
  switch (spec.kind) {
    case 'mlp': {
      const input = tf.input({ shape: [spec.inputs] })
      let x: tf.SymbolicTensor = input
      for (const units of spec.hidden) {
        x = tf.layers.dense({ units, activation: spec.activation === 'gelu' ? 'relu' : spec.activation, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor
        if (spec.dropout > 0) x = tf.layers.dropout({ rate: spec.dropout, seed: layerSeed++ }).apply(x) as tf.SymbolicTensor
      }
      const out = tf.layers.dense({ units: spec.classes, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor
      return tf.model({ inputs: input, outputs: out })
    }
    case 'cnn': {
      const input = tf.input({ shape: spec.inputShape })
      let x: tf.SymbolicTensor = input
      for (const c of spec.conv) {
        x = tf.layers.conv2d({ filters: c.filters, kernelSize: c.kernel, activation: 'relu', padding: 'same', kernelInitializer: init() }).apply(x) as tf.SymbolicTensor
        if (c.pool > 1) x = tf.layers.maxPooling2d({ poolSize: c.pool }).apply(x) as tf.SymbolicTensor
      }
      x = tf.layers.flatten().apply(x) as tf.SymbolicTensor
      for (const units of spec.dense) x = tf.layers.dense({ units, activation: 'relu', kernelInitializer: init() }).apply(x) as tf.SymbolicTensor
      const out = tf.layers.dense({ units: spec.classes, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor
      return tf.model({ inputs: input, outputs: out })
    }
    case 'char-transformer':
      throw new UnsupportedOnBackendError('char-transformer is not implemented yet')
  }
}

/** Fails early, with the reason, when the current backend cannot train this kind of model. */
export function assertTrainable (spec: ModelSpec, backend: string = tf.getBackend()): void {
  if (spec.kind === 'cnn' && backend === 'wasm') {
    throw new UnsupportedOnBackendError('CNN training needs the cpu or tfjs-node backend: wasm has no Conv2DBackpropFilter kernel')
  }
}
