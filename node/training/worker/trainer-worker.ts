/**
 * The local trainer in a worker thread: the inner steps run off the main thread, so that a peer's network
 * (gossip, the all-reduce of the previous round, bitswap) keeps running at full speed while it trains.
 * TensorFlow.js on the main thread holds the event loop for a whole step; an overlapped round
 * (round-loop.ts's runRoundsOverlapped) needs the all-reduce to progress during the next round's training.
 *
 * The worker has its own TensorFlow.js and model (built from the same spec and seed); each call sends the
 * starting weights (a copy, transferred) and the samples (copied), and gets the pseudo-gradient back
 * (transferred). The result is the same computation as trainLocal on the main thread.
 */
import { Worker } from 'node:worker_threads'
import type { BackendName } from '../backend.ts'
import type { InnerParams, LocalResult, Samples } from '../local-trainer.ts'
import type { ModelSpec } from '../model-spec.ts'
import type { FromWorker, ToWorker } from './messages.ts'

export class TrainerWorkerError extends Error {
  override name = 'TrainerWorkerError'
}

export class WorkerTrainer {
  private readonly worker: Worker
  private readonly pending = new Map<number, { resolve: (r: LocalResult) => void, reject: (e: Error) => void }>()
  private nextId = 0
  private failure?: Error
  /** The backend the worker runs on. */
  readonly backend: Promise<BackendName>

  constructor (model: ModelSpec, seed: number, backend?: BackendName) {
    // No inherited execArgv: the entry registers tsx itself (a second --import tsx would load it twice).
    this.worker = new Worker(new URL('./entry.mjs', import.meta.url), { execArgv: [] })
    this.backend = new Promise<BackendName>((resolve, reject) => {
      const onMessage = (m: FromWorker): void => {
        if (m.type === 'ready') resolve(m.backend)
        else if (m.type === 'error' && m.id == null) reject(new TrainerWorkerError(`trainer worker failed to start: ${m.message}`))
      }
      this.worker.on('message', onMessage)
    })
    this.backend.catch(() => {})
    this.worker.on('message', (m: FromWorker) => {
      if (m.type === 'result') this.settle(m.id)?.resolve(m.result)
      else if (m.type === 'error' && m.id != null) this.settle(m.id)?.reject(Object.assign(new TrainerWorkerError(m.message), { cause: m.name }))
    })
    const fail = (err: Error): void => {
      this.failure = err
      for (const [id, p] of this.pending) { this.pending.delete(id); p.reject(err) }
    }
    this.worker.on('error', (err) => { fail(new TrainerWorkerError(`trainer worker crashed: ${err.message}`)) })
    this.worker.on('exit', (code) => { fail(new TrainerWorkerError(`trainer worker exited (code ${code})`)) })
    this.post({ type: 'init', model, seed, backend })
  }

  /** trainLocal in the worker; an abort of `opts.signal` stops it between two steps (rejecting with its reason). */
  async train (global: Float32Array, samples: Samples, params: InnerParams, opts: { signal?: AbortSignal } = {}): Promise<LocalResult> {
    opts.signal?.throwIfAborted()
    if (this.failure != null) throw this.failure
    await this.backend
    const id = this.nextId++
    const start = global.slice()
    const result = new Promise<LocalResult>((resolve, reject) => { this.pending.set(id, { resolve, reject }) })
    const onAbort = (): void => { this.post({ type: 'abort', id }) }
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      this.post({ type: 'train', id, global: start, samples, params }, [start.buffer])
      return await result
    } catch (err) {
      if (opts.signal?.aborted === true) throw opts.signal.reason
      throw err
    } finally {
      opts.signal?.removeEventListener('abort', onAbort)
    }
  }

  async close (): Promise<void> {
    this.worker.removeAllListeners('exit')
    await this.worker.terminate()
  }

  private settle (id: number): { resolve: (r: LocalResult) => void, reject: (e: Error) => void } | undefined {
    const p = this.pending.get(id)
    this.pending.delete(id)
    return p
  }

  private post (message: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(message, transfer)
  }
}
