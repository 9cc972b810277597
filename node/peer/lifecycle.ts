/**
 * Graceful shutdown: on SIGINT or SIGTERM the node leaves cleanly (closes connections, flushes and closes
 * its stores) so nothing is left half-written; a second signal forces the exit.
 */
import type { Logger } from 'pino'

export function onShutdown (logger: Logger, stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false
    const handler = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting without a clean shutdown')
        process.exit(130)
      }
      stopping = true
      logger.info({ signal }, 'shutting down')
      stop().then(() => {
        logger.info('stopped cleanly')
        resolve()
      }, (err) => {
        logger.error({ err }, 'error during shutdown')
        process.exitCode = 1
        resolve()
      })
    }
    process.once('SIGINT', handler)
    process.once('SIGTERM', handler)
  })
}
