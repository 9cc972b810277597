/**
 * Inside the trainer worker: its own TensorFlow.js (the backend the main thread uses, else the fastest this
 * thread can load) and its own model instance; runs the inner steps (local-trainer.ts's trainLocal, the same
 * function the main thread runs) for each `train` message and sends the pseudo-gradient back, transferred.
 */
import { parentPort } from 'node:worker_threads'
import type * as tf from '@tensorflow/tfjs'
import { selectBackend } from '../backend.ts'
import { trainLocal } from '../local-trainer.ts'
import { buildModel } from '../models.ts'
import type { FromWorker, ToWorker } from './messages.ts'

const port = parentPort
if (port == null) throw new Error('worker-main.ts runs only as a worker thread')

let model: tf.LayersModel | undefined
const running = new Map<number, AbortController>()
const send = (message: FromWorker, transfer: ArrayBuffer[] = []): void => { port.postMessage(message, transfer) }

port.on('message', (message: ToWorker) => {
  switch (message?.type) {
    case 'init':
      void (async () => {
        try {
          const choice = await selectBackend({ force: message.backend }).catch(async () => await selectBackend())
          model = buildModel(message.model, message.seed)
          send({ type: 'ready', backend: choice.name })
        } catch (err) {
          send({ type: 'error', name: (err as Error).name, message: (err as Error).message })
        }
      })()
      return
    case 'train': {
      const controller = new AbortController()
      running.set(message.id, controller)
      void (async () => {
        try {
          if (model == null) throw new Error('trainer worker: train before init')
          const result = await trainLocal(model, message.global, message.samples, message.params, { signal: controller.signal })
          send({ type: 'result', id: message.id, result }, [result.pseudoGradient.buffer as ArrayBuffer])
        } catch (err) {
          send({ type: 'error', id: message.id, name: (err as Error).name, message: (err as Error).message })
        } finally {
          running.delete(message.id)
        }
      })()
      return
    }
    case 'abort':
      running.get(message.id)?.abort(new Error('aborted by the main thread'))
      return
    default:
      send({ type: 'error', name: 'TypeError', message: `trainer worker: unknown message ${JSON.stringify((message as { type?: unknown })?.type)}` })
  }
})
