/**
 * The apply step: DiLoCo's outer optimizer (SGD with Nesterov momentum; FedAvg is lr 1, no momentum) on the
 * round's average, in deterministic pure-JS arithmetic, so every honest peer holds bit-identical weights; the
 * momentum is part of the state it returns.
 */
import { OuterOptimizer, weightsHash, type OuterOptimizerOptions } from '../training/outer-optimizer.ts'
import type { OuterStep } from './steps.ts'

export function outerStep (options: OuterOptimizerOptions): OuterStep {
  return {
    apply: (current, average, round) => {
      const optimizer = new OuterOptimizer(options, current.momentum)
      const weights = optimizer.step(current.weights, average)
      return { round, weights, momentum: optimizer.getMomentum() }
    },
    hash: weightsHash
  }
}
