/**
 * How a failed command reports: one line on stderr, `nearai: <what went wrong>`. Errors this project
 * throws on bad input already say what to fix; an error that is not one of ours (a library's TypeError,
 * an internal message) is a bug to report, said as such, with the stack only when NEARAI_DEBUG is set.
 */

/** Errors whose message is written for the user (named errors of this project and of commander). */
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
  if (USER_FACING.has(e.name) || e.name === 'Error') return `nearai: ${first}`
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return `nearai: interrupted: ${first}`
  return `nearai: internal error (${e.name}): ${first}; run again with NEARAI_DEBUG=1 for the stack trace and please report it`
}

function firstLine (message: string): string {
  const line = message.split('\n').map(l => l.trim()).find(l => l.length > 0) ?? 'failed'
  return line.replace(/^Error: /, '')
}
