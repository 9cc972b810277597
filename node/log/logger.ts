/**
 * Structured logs (pino): human-readable on a terminal, JSON lines with `--log-format json` (or when
 * stdout is not a TTY and the format is `auto`). Components get child loggers named after what they are.
 */
import { pino, type Logger } from 'pino'

export type { Logger }

export interface LoggerOptions {
  level: string
  format: 'auto' | 'pretty' | 'json'
  /** Where logs go; defaults to stderr so that command output on stdout stays clean for pipes. */
  destination?: number
}

export function createLogger ({ level, format, destination = 2 }: LoggerOptions): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY === true)
  if (pretty) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { destination, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } }
    })
  }
  return pino({ level, base: { pid: process.pid } }, pino.destination({ dest: destination, sync: true }))
}

/** A logger that drops everything: for tests and library use. */
export function silentLogger (): Logger {
  return pino({ level: 'silent' })
}
