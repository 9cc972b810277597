/**
 * The messages between the main thread and the trainer worker (trainer-worker.ts ↔ worker-main.ts). Both ends
 * are this program's own code in one process, so the types are the contract; the worker still checks the kind
 * of each message it gets and answers an unknown one with an error.
 */
import type { BackendName } from '../backend.ts'
import type { InnerParams, LocalResult, Samples } from '../local-trainer.ts'
import type { ModelSpec } from '../model-spec.ts'

export type ToWorker =
  | { type: 'init', model: ModelSpec, seed: number, backend?: BackendName }
  | { type: 'train', id: number, global: Float32Array, samples: Samples, params: InnerParams }
  | { type: 'abort', id: number }

export type FromWorker =
  | { type: 'ready', backend: BackendName }
  | { type: 'result', id: number, result: LocalResult }
  | { type: 'error', id?: number, name: string, message: string }
