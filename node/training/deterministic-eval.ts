/**
 * Deterministic evaluation: a model's mean cross-entropy loss and accuracy on an evaluation set, computed
 * from the flat weights (flattenWeights' order) by a pure-JS float64 forward pass, so that every validator
 * on every machine gets the same bits and can attest the same `eval_loss` on chain.
 *
 * Why the bits are stable:
 * - No TensorFlow.js: its kernels differ by backend (cpu, wasm, native, GPU), sum in backend-chosen orders
 *   and work in float32. Nothing here imports it (types only), so the result cannot depend on the backend.
 * - float64 arithmetic only. ECMAScript fixes +, -, *, / and Math.sqrt as IEEE-754 binary64 operations
 *   rounded to nearest-even, with no fused multiply-add and no extended precision, on every CPU.
 * - A fixed order: every sum runs in index order (samples, positions, rows, columns) in one thread; the
 *   mean is one division of the total at the end.
 * - The transcendental functions used, Math.exp, Math.log and Math.tanh, are V8's software ports of fdlibm
 *   (src/base/ieee754.cc), the same code on x64 and arm64, not the platform's libm. They are the one thing a
 *   different JavaScript engine (or a V8 that replaced them) could change: the project pins Node 22, and
 *   test/training/deterministic-eval.test.ts pins the bits of one evaluation so such a change fails loudly.
 * - Inputs are float32 (weights, features) and int32 (labels), widened exactly to float64.
 *
 * Covered: `mlp` and `char-transformer` exactly as node/training/models.ts builds them (dropout is inactive
 * at evaluation; `gelu` uses the Abramowitz-Stegun 7.1.26 erf that TensorFlow.js's Erf kernels use, here
 * in float64). `cnn` is refused. The result agrees with TensorFlow.js's own evaluation to float32 rounding,
 * but it is its own definition: validators compare it with each other, never with a trainer's tfjs number.
 *
 * On chain the loss is the float64 as JSON.stringify writes it (its shortest round-trip text): equal bits
 * give equal text, and the contract compares the text.
 */
import type { ModelSpec } from './model-spec.ts'
import type { Samples } from './local-trainer.ts'

export class UnsupportedEvaluationError extends Error {
  override name = 'UnsupportedEvaluationError'
}

/** Weights or samples that cannot be evaluated: wrong size, non-finite weights, labels out of range. */
export class EvaluationInputError extends Error {
  override name = 'EvaluationInputError'
}

export interface DeterministicEvaluation {
  /** Mean softmax cross-entropy (natural log) over every scored label. */
  loss: number
  accuracy: number
  /** Samples evaluated. */
  samples: number
  /** Labels scored: samples, or samples x context for a language model. */
  scored: number
}

export interface WeightEntry { name: string, shape: number[] }

/** The epsilon of models.ts's LayerNorm in the char-transformer. */
const LAYER_NORM_EPSILON = 1e-5

// Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the approximation TensorFlow.js's Erf kernels use.
const ERF_P = 0.3275911
const ERF_A1 = 0.254829592
const ERF_A2 = -0.284496736
const ERF_A3 = 1.421413741
const ERF_A4 = -1.453152027
const ERF_A5 = 1.061405429

function erf (x: number): number {
  const sign = Math.sign(x)
  const v = Math.abs(x)
  const t = 1 / (1 + ERF_P * v)
  return sign * (1 - (((((ERF_A5 * t + ERF_A4) * t) + ERF_A3) * t + ERF_A2) * t + ERF_A1) * t * Math.exp(-v * v))
}

type Activation = (x: number) => number
const ACTIVATIONS: Record<string, Activation> = {
  linear: x => x,
  relu: x => (x > 0 ? x : 0),
  tanh: x => Math.tanh(x),
  sigmoid: x => 1 / (1 + Math.exp(-x)),
  gelu: x => x * (0.5 * (1 + erf(x / Math.SQRT2)))
}

/** Throws UnsupportedEvaluationError, naming the model kind, when this module cannot evaluate `spec`. */
export function assertDeterministicallyEvaluable (spec: ModelSpec): void {
  if (spec.kind === 'cnn') {
    throw new UnsupportedEvaluationError('the deterministic evaluation covers mlp and char-transformer models; cnn is not supported yet, so validators cannot attest a cnn job')
  }
}

/** The weights the evaluation reads, in flattenWeights' order (layer by layer, kernel then bias). */
export function deterministicWeightLayout (spec: ModelSpec): WeightEntry[] {
  assertDeterministicallyEvaluable(spec)
  const out: WeightEntry[] = []
  const dense = (name: string, inputs: number, units: number): void => { out.push({ name: `${name}/kernel`, shape: [inputs, units] }, { name: `${name}/bias`, shape: [units] }) }
  if (spec.kind === 'mlp') {
    let inputs = spec.inputs
    spec.hidden.forEach((units, i) => { dense(`dense${i}`, inputs, units); inputs = units })
    dense('output', inputs, spec.classes)
    return out
  }
  if (spec.kind === 'char-transformer') {
    const d = spec.dModel
    const norm = (name: string): void => { out.push({ name: `${name}/gamma`, shape: [d] }, { name: `${name}/beta`, shape: [d] }) }
    out.push({ name: 'embedding/tokens', shape: [spec.vocab, d] }, { name: 'embedding/positions', shape: [spec.context, d] })
    for (let l = 0; l < spec.layers; l++) {
      norm(`block${l}/norm1`)
      for (const p of ['query', 'key', 'value', 'output']) out.push({ name: `block${l}/attention/${p}_kernel`, shape: [d, d] })
      for (const p of ['query', 'key', 'value', 'output']) out.push({ name: `block${l}/attention/${p}_bias`, shape: [d] })
      norm(`block${l}/norm2`)
      dense(`block${l}/mlp1`, d, d * spec.mlpRatio)
      dense(`block${l}/mlp2`, d * spec.mlpRatio, d)
    }
    norm('final_norm')
    dense('logits', d, spec.vocab)
    return out
  }
  throw new UnsupportedEvaluationError(`unknown model kind ${(spec as { kind: string }).kind}`)
}

const sizeOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1)

/** The flat weights as float64 views, one per layout entry, after checking size and finiteness. */
function unpack (spec: ModelSpec, weights: Float32Array): Float64Array[] {
  const layout = deterministicWeightLayout(spec)
  const total = layout.reduce((n, w) => n + sizeOf(w.shape), 0)
  if (weights.length !== total) throw new EvaluationInputError(`the ${spec.kind} model has ${total} weights, got ${weights.length}`)
  const all = Float64Array.from(weights)
  let bad = 0
  for (let i = 0; i < all.length; i++) if (!Number.isFinite(all[i])) bad++
  if (bad > 0) throw new EvaluationInputError(`${bad} of ${all.length} weights are not finite numbers`)
  let at = 0
  return layout.map(w => { const n = sizeOf(w.shape); const v = all.subarray(at, at + n); at += n; return v })
}

/** out[j] = act(sum_i x[i] * kernel[i][j] + bias[j]), summed in i order. */
function denseForward (x: Float64Array, kernel: Float64Array, bias: Float64Array, out: Float64Array, act: Activation): void {
  const inputs = x.length
  const units = out.length
  out.fill(0)
  for (let i = 0; i < inputs; i++) {
    const xi = x[i]
    // Skipping a zero input changes no bit: the sum starts at +0 and (round to nearest) never becomes -0, so
    // adding a signed zero product leaves it as it is. Weights are known finite. Sparse inputs (MNIST) run faster.
    if (xi === 0) continue
    const row = i * units
    for (let j = 0; j < units; j++) out[j] += xi * kernel[row + j]
  }
  for (let j = 0; j < units; j++) out[j] = act(out[j] + bias[j])
}

/** Adds one row's cross-entropy to `acc` and whether its argmax (first maximum) is the label. */
function scoreRow (logits: Float64Array, label: number, acc: { loss: number, correct: number }): void {
  let max = logits[0]
  let best = 0
  for (let j = 1; j < logits.length; j++) if (logits[j] > max) { max = logits[j]; best = j }
  let sum = 0
  for (let j = 0; j < logits.length; j++) sum += Math.exp(logits[j] - max)
  acc.loss += max + Math.log(sum) - logits[label]
  if (best === label) acc.correct++
}

function checkLabel (label: number, classes: number, where: string): void {
  if (!Number.isInteger(label) || label < 0 || label >= classes) throw new EvaluationInputError(`${where}: label ${label} is outside 0..${classes - 1}`)
}

/**
 * Mean cross-entropy loss and accuracy of `spec` with flat weights `weights` on `data`, bit-identical on
 * every machine (see the module comment). Throws UnsupportedEvaluationError for a model kind it does not
 * cover and EvaluationInputError for weights or samples that do not fit the model.
 */
export function evaluateDeterministic (spec: ModelSpec, weights: Float32Array, data: Samples): DeterministicEvaluation {
  assertDeterministicallyEvaluable(spec)
  if (data.count === 0) throw new EvaluationInputError('no samples to evaluate on')
  const w = unpack(spec, weights)
  const acc = { loss: 0, correct: 0 }
  let scored = 0
  if (spec.kind === 'mlp') {
    const per = sizeOf(data.featureShape)
    if (per !== spec.inputs) throw new EvaluationInputError(`samples have ${per} features, the mlp takes ${spec.inputs}`)
    if ((data.labelShape ?? []).length > 0) throw new EvaluationInputError('an mlp scores one label a sample; these samples carry a label shape')
    const layers = [...spec.hidden, spec.classes]
    const buffers = layers.map(units => new Float64Array(units))
    const input = new Float64Array(per)
    for (let s = 0; s < data.count; s++) {
      for (let i = 0; i < per; i++) input[i] = data.x[s * per + i]
      let x = input
      layers.forEach((_, l) => {
        denseForward(x, w[2 * l], w[2 * l + 1], buffers[l], l < spec.hidden.length ? ACTIVATIONS[spec.activation] : ACTIVATIONS.linear)
        x = buffers[l]
      })
      checkLabel(data.y[s], spec.classes, `sample ${s}`)
      scoreRow(x, data.y[s], acc)
      scored++
    }
  } else if (spec.kind === 'char-transformer') {
    scored = evaluateCharTransformer(spec, w, data, acc)
  }
  return { loss: acc.loss / scored, accuracy: acc.correct / scored, samples: data.count, scored }
}

/** LayerNorm over each row of [rows, d]: (x - mean) / sqrt(var + eps) * gamma + beta, as models.ts's LayerNorm. */
function layerNorm (x: Float64Array, rows: number, d: number, gamma: Float64Array, beta: Float64Array, out: Float64Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * d
    let mean = 0
    for (let k = 0; k < d; k++) mean += x[o + k]
    mean /= d
    let variance = 0
    for (let k = 0; k < d; k++) { const c = x[o + k] - mean; variance += c * c }
    variance /= d
    const inv = 1 / Math.sqrt(variance + LAYER_NORM_EPSILON)
    for (let k = 0; k < d; k++) out[o + k] = (x[o + k] - mean) * inv * gamma[k] + beta[k]
  }
}

/** [rows, inputs] x [inputs, units] + bias, row by row, with an activation. */
function denseRows (x: Float64Array, rows: number, inputs: number, kernel: Float64Array, bias: Float64Array, out: Float64Array, act: Activation): void {
  const units = bias.length
  for (let r = 0; r < rows; r++) denseForward(x.subarray(r * inputs, (r + 1) * inputs), kernel, bias, out.subarray(r * units, (r + 1) * units), act)
}

function evaluateCharTransformer (spec: Extract<ModelSpec, { kind: 'char-transformer' }>, w: Float64Array[], data: Samples, acc: { loss: number, correct: number }): number {
  const T = spec.context
  const d = spec.dModel
  const heads = spec.heads
  const dh = d / heads
  const hidden = d * spec.mlpRatio
  const per = sizeOf(data.featureShape)
  if (per !== T) throw new EvaluationInputError(`samples have ${per} tokens, the char-transformer's context is ${T}`)
  const labels = sizeOf(data.labelShape ?? [])
  if (labels !== T) throw new EvaluationInputError(`samples carry ${labels} labels each, the char-transformer predicts ${T} (one a position)`)
  const scale = 1 / Math.sqrt(dh)
  const [tokens, positions] = w
  const x = new Float64Array(T * d)
  const h = new Float64Array(T * d)
  const q = new Float64Array(T * d)
  const k = new Float64Array(T * d)
  const v = new Float64Array(T * d)
  const att = new Float64Array(T * d)
  const proj = new Float64Array(T * d)
  const mlp = new Float64Array(T * hidden)
  const logits = new Float64Array(T * spec.vocab)
  const probs = new Float64Array(T)
  let scored = 0
  for (let s = 0; s < data.count; s++) {
    // Embedding: the token's row (an id outside the vocabulary embeds to nothing, as models.ts's one-hot) + position.
    for (let t = 0; t < T; t++) {
      const id = Math.trunc(data.x[s * T + t])
      const valid = id >= 0 && id < spec.vocab
      for (let e = 0; e < d; e++) x[t * d + e] = (valid ? tokens[id * d + e] : 0) + positions[t * d + e]
    }
    let at = 2
    for (let l = 0; l < spec.layers; l++) {
      const [g1, b1, wq, wk, wv, wo, bq, bk, bv, bo, g2, b2, k1, c1, k2, c2] = w.slice(at, at + 16)
      at += 16
      layerNorm(x, T, d, g1, b1, h)
      denseRows(h, T, d, wq, bq, q, ACTIVATIONS.linear)
      denseRows(h, T, d, wk, bk, k, ACTIVATIONS.linear)
      denseRows(h, T, d, wv, bv, v, ACTIVATIONS.linear)
      for (let head = 0; head < heads; head++) {
        const o = head * dh
        for (let t = 0; t < T; t++) {
          // Causal: position t attends to positions 0..t (models.ts masks the rest with -1e9, whose exp is 0).
          let max = -Infinity
          for (let u = 0; u <= t; u++) {
            let dot = 0
            for (let e = 0; e < dh; e++) dot += q[t * d + o + e] * k[u * d + o + e]
            probs[u] = dot * scale
            if (probs[u] > max) max = probs[u]
          }
          let sum = 0
          for (let u = 0; u <= t; u++) { probs[u] = Math.exp(probs[u] - max); sum += probs[u] }
          for (let e = 0; e < dh; e++) {
            let out = 0
            for (let u = 0; u <= t; u++) out += (probs[u] / sum) * v[u * d + o + e]
            att[t * d + o + e] = out
          }
        }
      }
      denseRows(att, T, d, wo, bo, proj, ACTIVATIONS.linear)
      for (let i = 0; i < T * d; i++) x[i] += proj[i]
      layerNorm(x, T, d, g2, b2, h)
      denseRows(h, T, d, k1, c1, mlp, ACTIVATIONS.gelu)
      denseRows(mlp, T, hidden, k2, c2, proj, ACTIVATIONS.linear)
      for (let i = 0; i < T * d; i++) x[i] += proj[i]
    }
    layerNorm(x, T, d, w[at], w[at + 1], h)
    denseRows(h, T, d, w[at + 2], w[at + 3], logits, ACTIVATIONS.linear)
    for (let t = 0; t < T; t++) {
      const label = data.y[s * T + t]
      checkLabel(label, spec.vocab, `sample ${s} position ${t}`)
      scoreRow(logits.subarray(t * spec.vocab, (t + 1) * spec.vocab), label, acc)
      scored++
    }
  }
  return scored
}
