/**
 * The evaluate step: held-out accuracy and loss of the new state, at every checkpoint and every `every`
 * rounds. Runs on its own model, so it never touches the weights the train step works on.
 */
import type * as tf from '@tensorflow/tfjs'
import { evaluateWithLoss, type Evaluation, type Samples } from '../training/local-trainer.ts'
import type { GlobalState, RoundEvaluator, RoundResult } from './steps.ts'

export class HeldOutEvaluator implements RoundEvaluator {
  private last?: { weightsSha256: string, evaluation: Evaluation }

  /** No `samples` (the job has no evaluation dataset): nothing is evaluated. */
  constructor (private readonly model: tf.LayersModel, private readonly samples: Samples | undefined, private readonly every: number) {}

  evaluate (state: GlobalState, result: RoundResult): Evaluation | undefined {
    if (this.samples == null || !(result.checkpoint || (state.round + 1) % this.every === 0)) return undefined
    const evaluation = evaluateWithLoss(this.model, state.weights, this.samples)
    this.last = { weightsSha256: result.weightsSha256, evaluation }
    return evaluation
  }

  /** The evaluation of the job's final state: the last one, unless it was of other weights (the peer adopted the final state). */
  final (weights: Float32Array, weightsSha256: string): Evaluation | undefined {
    if (this.samples == null) return undefined
    if (this.last?.weightsSha256 === weightsSha256) return this.last.evaluation
    return evaluateWithLoss(this.model, weights, this.samples)
  }
}
