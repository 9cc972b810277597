/**
 * DiLoCo's outer step: SGD with (Nesterov) momentum on the averaged pseudo-gradient (global - local).
 * Pure JS on typed arrays, not on a tfjs backend, so every honest peer computes bit-identical weights.
 * FedAvg is lr 1, momentum 0.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'

export interface OuterOptimizerOptions { lr: number, momentum: number, nesterov: boolean }

export interface WeightedPseudoGradient { peerId: string, pseudoGradient: Float32Array, samples: number }

/**
 * Weighted average by sample count. Canonical order: contributions sorted by peer id (code-unit order),
 * accumulated in float64 element by element, then rounded once to float32, so the result does not depend
 * on arrival order.
 */
export function averagePseudoGradients (contributions: WeightedPseudoGradient[]): Float32Array {
  if (contributions.length === 0) throw new RangeError('no contributions to average')
  const sorted = [...contributions].sort((a, b) => a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
  const n = sorted[0].pseudoGradient.length
  let total = 0
  for (const c of sorted) {
    if (c.pseudoGradient.length !== n) throw new RangeError(`peer ${c.peerId}: length ${c.pseudoGradient.length}, expected ${n}`)
    if (!(c.samples > 0)) throw new RangeError(`peer ${c.peerId}: samples must be positive`)
    total += c.samples
  }
  const acc = new Float64Array(n)
  for (const c of sorted) {
    const w = c.samples / total
    const g = c.pseudoGradient
    for (let i = 0; i < n; i++) acc[i] += w * g[i]
  }
  return Float32Array.from(acc)
}

export class OuterOptimizer {
  private momentumBuffer: Float32Array | undefined
  constructor (readonly options: OuterOptimizerOptions, momentum?: Float32Array) {
    if (!(options.lr > 0)) throw new RangeError('outer lr must be positive')
    if (!(options.momentum >= 0 && options.momentum < 1)) throw new RangeError('outer momentum must be in [0, 1)')
    this.momentumBuffer = momentum?.slice()
  }

  /** Returns new global weights; `weights` is left untouched. Arithmetic in float64 per element, stored as float32. */
  step (weights: Float32Array, pseudoGradient: Float32Array): Float32Array {
    if (weights.length !== pseudoGradient.length) throw new RangeError('weights and pseudo-gradient lengths differ')
    const { lr, momentum, nesterov } = this.options
    const m = this.momentumBuffer ?? new Float32Array(weights.length)
    if (m.length !== weights.length) throw new RangeError('momentum state length does not match the weights')
    const out = new Float32Array(weights.length)
    for (let i = 0; i < weights.length; i++) {
      const g = pseudoGradient[i]
      const mi = Math.fround(momentum * m[i] + g)
      m[i] = mi
      const update = nesterov ? g + momentum * mi : mi
      out[i] = weights[i] - lr * update
    }
    this.momentumBuffer = m
    return out
  }

  /** Momentum state for checkpoints (a copy; empty before the first step). */
  getMomentum (): Float32Array { return this.momentumBuffer?.slice() ?? new Float32Array(0) }
}

/** Hex sha256 of the little-endian float32 bytes of `weights`. */
export function weightsHash (weights: Float32Array): string {
  const bytes = new Uint8Array(weights.length * 4)
  const dv = new DataView(bytes.buffer)
  for (let i = 0; i < weights.length; i++) dv.setFloat32(i * 4, weights[i], true)
  return bytesToHex(sha256(bytes))
}
