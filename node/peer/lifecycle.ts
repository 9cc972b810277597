/**
 * Graceful shutdown: on SIGINT or SIGTERM the node leaves cleanly (closes connections, flushes and closes
 * its stores, releases its home) so nothing is left half-written; a second signal forces the exit.
 * Handlers are installed before anything starts, so a signal during start-up also ends in a clean stop.
 */
import type { Logger } from 'pino'

export interface Shutdown {
  /** Registers a cleanup step; steps run in reverse order of registration, like a stack of resources. */
  defer: (step: () => Promise<void>) => void
  /** Resolves once a signal has arrived and every step has run. */
  done: Promise<void>
  /** True once a signal arrived (start-up code checks it between steps). */
  readonly requested: boolean
  /** Aborted when shutdown begins: long work (a training job) listens to it and winds down. */
  readonly signal: AbortSignal
  /** Starts the same clean shutdown as a signal would (e.g. when a job has finished). */
  request: (reason: string) => void
}

export function gracefulShutdown (logger: Logger): Shutdown {
  const steps: Array<() => Promise<void>> = []
  let requested = false
  let resolveDone: () => void = () => {}
  const done = new Promise<void>(resolve => { resolveDone = resolve })
  const abort = new AbortController()
  const handler = (signal: NodeJS.Signals | string): void => {
    if (requested) {
      if (!signal.startsWith('SIG')) return
      logger.warn({ signal }, 'second signal: exiting without a clean shutdown')
      process.exit(130)
    }
    requested = true
    logger.info({ signal }, 'shutting down')
    abort.abort(new Error(`shutting down (${signal})`))
    void (async () => {
      for (const step of steps.reverse()) {
        try {
          await step()
        } catch (err) {
          logger.error({ err }, 'error during shutdown')
          process.exitCode = 1
        }
      }
      logger.info('stopped cleanly')
      process.off('SIGINT', handler)
      process.off('SIGTERM', handler)
      resolveDone()
    })()
  }
  process.on('SIGINT', handler)
  process.on('SIGTERM', handler)
  return {
    defer: (step) => {
      // A resource that finished starting after shutdown began (a signal during start-up) is released at once.
      if (requested) void step().catch((err: unknown) => { logger.error({ err }, 'error during shutdown'); process.exitCode = 1 })
      else steps.push(step)
    },
    done,
    get requested () { return requested },
    signal: abort.signal,
    request: (reason) => { handler(reason) }
  }
}
