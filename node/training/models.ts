/**
 * Builds tfjs Layers models from specs with seeded initialisers, so every peer starts from identical weights.
 * CNNs need a backend with Conv2DBackpropFilter (cpu or tfjs-node): wasm lacks it, checked by assertTrainable.
 *
 * The char-transformer is a small decoder-only language model made of matmuls, elementwise ops and
 * softmax only, so that it trains on the wasm backend too: the token embedding is a one-hot matmul (a
 * gather's gradient needs UnsortedSegmentSum, which wasm lacks), attention is batched matmuls with an
 * additive causal mask. Its custom layers (TokenPositionEmbedding, CausalSelfAttention, LayerNorm) are
 * registered with tf.serialization when this module is imported, so import it before
 * `tf.loadLayersModel` reads a char-transformer checkpoint ("Unknown layer" otherwise).
 */
import * as tf from '@tensorflow/tfjs'
import type { ModelSpec } from './model-spec.ts'

export class UnsupportedOnBackendError extends Error {
  override name = 'UnsupportedOnBackendError'
}

type LayerArgs = NonNullable<ConstructorParameters<typeof tf.layers.Layer>[0]>
type Shape = Array<number | null>
type Initializer = ReturnType<typeof tf.initializers.glorotUniform>

/** Standard deviation of the embeddings' normal initialiser (GPT-2's). */
const EMBEDDING_STDDEV = 0.02
const MASKED = -1e9

/** Rows of a [..., n] tensor times a [n, m] matrix, plus a bias: [..., m]. */
function affine (x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor): tf.Tensor {
  const lead = x.shape.slice(0, -1)
  const [rows, cols] = kernel.shape as [number, number]
  const y = tf.add(tf.matMul(tf.reshape(x, [-1, rows]), kernel as tf.Tensor2D), bias)
  return tf.reshape(y, [...lead, cols])
}

export interface TokenPositionEmbeddingArgs extends LayerArgs {
  vocab: number
  context: number
  dModel: number
  /** Seed of the token and position embeddings' initialisers (seed and seed + 1). */
  seed?: number
}

/**
 * Token ids [batch, T] (T <= context) to token embedding + learned position embedding [batch, T, dModel].
 * Ids outside [0, vocab) embed to the position embedding alone; decoders reject them before training.
 */
export class TokenPositionEmbedding extends tf.layers.Layer {
  static readonly className = 'TokenPositionEmbedding'
  readonly vocab: number
  readonly context: number
  readonly dModel: number
  readonly seed: number | undefined
  private tokens!: tf.LayerVariable
  private positions!: tf.LayerVariable

  constructor (args: TokenPositionEmbeddingArgs) {
    super(args)
    this.vocab = args.vocab
    this.context = args.context
    this.dModel = args.dModel
    this.seed = args.seed
  }

  override build (): void {
    const init = (offset: number): Initializer => tf.initializers.randomNormal({ mean: 0, stddev: EMBEDDING_STDDEV, seed: this.seed != null ? this.seed + offset : undefined })
    this.tokens = this.addWeight('tokens', [this.vocab, this.dModel], 'float32', init(0))
    this.positions = this.addWeight('positions', [this.context, this.dModel], 'float32', init(1))
    this.built = true
  }

  override computeOutputShape (inputShape: Shape): Shape {
    return [...inputShape, this.dModel]
  }

  override call (inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const ids = tf.cast(Array.isArray(inputs) ? inputs[0] : inputs, 'int32')
      const [batch, steps] = ids.shape
      if (steps > this.context) throw new RangeError(`${steps} tokens exceed the model's context of ${this.context}`)
      // int32 then cast: wasm's OneHot kernel (tfjs 4.22) writes int bits into a float32 output.
      const oneHot = tf.cast(tf.oneHot(tf.reshape(ids, [-1]), this.vocab), 'float32')
      const tokens = tf.reshape(tf.matMul(oneHot, this.tokens.read() as tf.Tensor2D), [batch, steps, this.dModel])
      const positions = tf.slice(this.positions.read(), [0, 0], [steps, this.dModel])
      return tf.add(tokens, positions)
    })
  }

  override getConfig (): tf.serialization.ConfigDict {
    return { ...super.getConfig(), vocab: this.vocab, context: this.context, dModel: this.dModel, ...(this.seed != null ? { seed: this.seed } : {}) }
  }
}

export interface CausalSelfAttentionArgs extends LayerArgs {
  heads: number
  /** Seed of the four projection kernels' Glorot initialisers (seed .. seed + 3). */
  seed?: number
}

/**
 * Multi-head self-attention over [batch, T, dModel] where position t attends to positions <= t only:
 * Q, K, V projections, softmax(QKᵀ/√d_head + mask)V per head, output projection.
 */
export class CausalSelfAttention extends tf.layers.Layer {
  static readonly className = 'CausalSelfAttention'
  readonly heads: number
  readonly seed: number | undefined
  private kernels: tf.LayerVariable[] = []
  private biases: tf.LayerVariable[] = []
  private maskCache = new Map<number, Float32Array>()

  constructor (args: CausalSelfAttentionArgs) {
    super(args)
    this.heads = args.heads
    this.seed = args.seed
  }

  override build (inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape
    const d = shape[shape.length - 1]
    if (d == null || d % this.heads !== 0) throw new RangeError(`model width ${String(d)} is not divisible by ${this.heads} heads`)
    this.kernels = ['query', 'key', 'value', 'output'].map((name, i) =>
      this.addWeight(`${name}_kernel`, [d, d], 'float32', tf.initializers.glorotUniform({ seed: this.seed != null ? this.seed + i : undefined })))
    this.biases = ['query', 'key', 'value', 'output'].map(name => this.addWeight(`${name}_bias`, [d], 'float32', tf.initializers.zeros()))
    this.built = true
  }

  override computeOutputShape (inputShape: Shape): Shape {
    return inputShape
  }

  /** 0 on and below the diagonal, a large negative number above it: row t sees columns <= t. */
  private mask (steps: number): tf.Tensor2D {
    let m = this.maskCache.get(steps)
    if (m == null) {
      m = new Float32Array(steps * steps)
      for (let r = 0; r < steps; r++) for (let c = r + 1; c < steps; c++) m[r * steps + c] = MASKED
      this.maskCache.set(steps, m)
    }
    return tf.tensor2d(m, [steps, steps])
  }

  override call (inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs
      const [batch, steps, d] = x.shape
      const dh = d / this.heads
      const [wq, wk, wv, wo] = this.kernels.map(k => k.read())
      const [bq, bk, bv, bo] = this.biases.map(b => b.read())
      // [batch, T, d] -> [batch, heads, T, dh]
      const split = (t: tf.Tensor): tf.Tensor4D => tf.transpose(tf.reshape(t, [batch, steps, this.heads, dh]), [0, 2, 1, 3])
      const q = split(affine(x, wq, bq))
      const k = split(affine(x, wk, bk))
      const v = split(affine(x, wv, bv))
      const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), this.mask(steps))
      const attended = tf.matMul(tf.softmax(scores), v)
      const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [batch, steps, d])
      return affine(merged, wo, bo)
    })
  }

  override getConfig (): tf.serialization.ConfigDict {
    return { ...super.getConfig(), heads: this.heads, ...(this.seed != null ? { seed: this.seed } : {}) }
  }
}

export interface LayerNormArgs extends LayerArgs {
  epsilon?: number
}

/**
 * Normalises the last axis to zero mean and unit variance, then scales and shifts it (learned gamma, beta).
 * tfjs' own LayerNormalization tiles its statistics to the input's shape, and the gradient of a tile is
 * a slice per repetition: hundreds of kernels a step. Broadcasting here keeps the backward pass to a few.
 */
export class LayerNorm extends tf.layers.Layer {
  static readonly className = 'LayerNorm'
  readonly epsilon: number
  private gamma!: tf.LayerVariable
  private beta!: tf.LayerVariable

  constructor (args: LayerNormArgs = {}) {
    super(args)
    this.epsilon = args.epsilon ?? 1e-5
  }

  override build (inputShape: Shape | Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as Shape
    const d = shape[shape.length - 1]
    if (d == null) throw new RangeError('LayerNorm needs a known last dimension')
    this.gamma = this.addWeight('gamma', [d], 'float32', tf.initializers.ones())
    this.beta = this.addWeight('beta', [d], 'float32', tf.initializers.zeros())
    this.built = true
  }

  override computeOutputShape (inputShape: Shape): Shape {
    return inputShape
  }

  override call (inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs
      const centred = tf.sub(x, tf.mean(x, -1, true))
      const variance = tf.mean(tf.square(centred), -1, true)
      return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, this.epsilon))), this.gamma.read()), this.beta.read())
    })
  }

  override getConfig (): tf.serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon }
  }
}

tf.serialization.registerClass(TokenPositionEmbedding)
tf.serialization.registerClass(CausalSelfAttention)
tf.serialization.registerClass(LayerNorm)

export function buildModel (spec: ModelSpec, seed: number): tf.LayersModel {
  let layerSeed = seed * 1000
  const init = (): Initializer => tf.initializers.glorotUniform({ seed: layerSeed++ })
  switch (spec.kind) {
    case 'mlp': {
      const input = tf.input({ shape: [spec.inputs] })
      let x: tf.SymbolicTensor = input
      for (const units of spec.hidden) {
        // 'gelu' is tfjs-layers' exact GELU, x·Φ(x) through erf (wasm has Erf and its gradient's ops).
        x = tf.layers.dense({ units, activation: spec.activation, kernelInitializer: init() }).apply(x) as tf.SymbolicTensor
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
      return buildCharTransformer(spec, (n) => { const s = layerSeed; layerSeed += n; return s })
  }
}

/**
 * Pre-LayerNorm GPT-style decoder: embeddings, then per block x + Attn(LN(x)) and x + MLP(LN(x)) with a
 * GELU MLP of width mlpRatio·dModel, a final LayerNorm and a projection to vocab logits at every position.
 * Input int32 token ids [batch, context]; output logits [batch, context, vocab].
 */
function buildCharTransformer (spec: Extract<ModelSpec, { kind: 'char-transformer' }>, seeds: (n: number) => number): tf.LayersModel {
  const glorot = (): Initializer => tf.initializers.glorotUniform({ seed: seeds(1) })
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]): tf.SymbolicTensor => layer.apply(x) as tf.SymbolicTensor
  const norm = (): tf.layers.Layer => new LayerNorm({ epsilon: 1e-5 })
  const input = tf.input({ shape: [spec.context], dtype: 'int32' })
  let x = apply(new TokenPositionEmbedding({ vocab: spec.vocab, context: spec.context, dModel: spec.dModel, seed: seeds(2) }), input)
  for (let i = 0; i < spec.layers; i++) {
    const attended = apply(new CausalSelfAttention({ heads: spec.heads, seed: seeds(4) }), apply(norm(), x))
    x = apply(tf.layers.add(), [x, attended])
    let h = apply(tf.layers.dense({ units: spec.dModel * spec.mlpRatio, activation: 'gelu', kernelInitializer: glorot() }), apply(norm(), x))
    h = apply(tf.layers.dense({ units: spec.dModel, kernelInitializer: glorot() }), h)
    x = apply(tf.layers.add(), [x, h])
  }
  const logits = apply(tf.layers.dense({ units: spec.vocab, kernelInitializer: glorot() }), apply(norm(), x))
  return tf.model({ inputs: input, outputs: logits })
}

/** Fails early, with the reason, when the current backend cannot train this kind of model. */
export function assertTrainable (spec: ModelSpec, backend: string = tf.getBackend()): void {
  if (spec.kind === 'cnn' && backend === 'wasm') {
    throw new UnsupportedOnBackendError('CNN training needs the cpu or tfjs-node backend: wasm has no Conv2DBackpropFilter kernel')
  }
}
