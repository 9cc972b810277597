/**
 * How a failed command reports: one line on stderr, `nearai: <what went wrong>`. Errors this project
 * throws on bad input already say what to fix; an error that is not one of ours (a library's internal
 * message, a TypeError of a bug) is a bug to report, said as such, with the stack only when NEARAI_DEBUG
 * is set. "Ours" is an error raised in this project's own code (not under node_modules), or one named below.
 */
import { fileURLToPath } from 'node:url'
import { dirname, resolve } from 'node:path'

/** The project's root folder (node/cli/ is two levels below it). */
const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** Errors JavaScript raises for a program's own mistakes: never a message meant for the user. */
const BUGS = new Set(['TypeError', 'ReferenceError', 'SyntaxError', 'EvalError', 'URIError'])

/** Errors whose message is written for the user, wherever they are raised (named errors of this project and of commander). */
const USER_FACING = new Set([
  'ConfigError', 'HomeError', 'HomeLockedError', 'NoNetworkError', 'CommanderError', 'InvalidArgumentError',
  'StorageError', 'ContentNotFoundError', 'FetchTimeoutError', 'ContentTooLargeError', 'HashMismatchError', 'InvalidContentError',
  'UnsupportedInputError', 'NoSuchShardError', 'NotPinnedError', 'InvalidSpecError', 'InvalidMessageError', 'MessageTooLargeError',
  'JobNotFoundError', 'IncompatibleModelError', 'IncompatibleDataError', 'BackendUnavailableError', 'UnsupportedOnBackendError',
  'LedgerCallError', 'ChainLockedError', 'JournalCorruptError', 'InvalidTransactionError', 'UsageError', 'OutputFileError'
])

/** A mistake in how a command was called, found by the command itself (commander finds the others). */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** The one line printed for `err` (several lines, with the stack, when `debug`). */
export function describeError (err: unknown, debug = false): string {
  const e = err instanceof Error ? err : new Error(String(err))
  if (debug && e.stack != null) return `nearai: ${e.stack}`
  const first = firstLine(e.message)
  if (USER_FACING.has(e.name) || (!BUGS.has(e.name) && raisedInProject(e))) return `nearai: ${first}`
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return `nearai: interrupted: ${first}`
  return `nearai: internal error (${e.name}): ${first}; run again with NEARAI_DEBUG=1 for the stack trace and please report it`
}

/** Whether the first frame of `e`'s stack is in this project's code rather than a dependency's. */
function raisedInProject (e: Error): boolean {
  for (const line of (e.stack ?? '').split('\n').slice(1)) {
    const at = /\(?((?:file:\/\/)?\/[^():]+):\d+:\d+\)?\s*$/.exec(line)
    if (at == null) continue // a frame without a file (native code, an anonymous function)
    const file = at[1].startsWith('file://') ? fileURLToPath(at[1]) : at[1]
    return file.startsWith(PROJECT + '/') && !file.includes('/node_modules/')
  }
  return false
}

function firstLine (message: string): string {
  const line = message.split('\n').map(l => l.trim()).find(l => l.length > 0) ?? 'failed'
  return line.replace(/^Error: /, '')
}
