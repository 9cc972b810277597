/**
 * Graceful shutdown: on SIGINT or SIGTERM the node leaves cleanly (closes connections, flushes and closes
 * its stores, releases its home) so nothing is left half-written; a second signal forces the exit.
 * Handlers are installed before anything starts, so a signal during start-up also ends in a clean stop.
 * The same signal again within a second is the same request (a terminal's Ctrl-C reaches both `nearai`'s
 * launcher and the node it re-executed on Node 22, and the launcher passes it on), not a demand to force.
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
  /**
   * Start-up failed: runs the cleanup steps now, without the shutdown log lines (the caller reports the
   * error), so that nothing started stays running and the home is unlocked; resolves when they are done.
   */
  unwind: () => Promise<void>
}

/** A repeat of the first signal within this window is not a second signal (see above). */
export const SIGNAL_ECHO_MS = 1000

export function gracefulShutdown (logger: Logger): Shutdown {
  const steps: Array<() => Promise<void>> = []
  let requested = false
  let first: { signal: string, at: number } | undefined
  let resolveDone: () => void = () => {}
  const done = new Promise<void>(resolve => { resolveDone = resolve })
  const abort = new AbortController()
  let quiet = false
  const handler = (signal: NodeJS.Signals | string): void => {
    if (requested) {
      if (!signal.startsWith('SIG')) return
      if (first?.signal === signal && Date.now() - first.at < SIGNAL_ECHO_MS) return
      logger.warn({ signal }, 'second signal: exiting without a clean shutdown')
      process.exit(130)
    }
    requested = true
    first = { signal, at: Date.now() }
    if (!quiet) logger.info({ signal }, 'shutting down')
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
      if (!quiet) logger.info('stopped cleanly')
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
    request: (reason) => { handler(reason) },
    unwind: async () => {
      if (!requested) quiet = true
      handler('start-up failed')
      await done
    }
  }
}
