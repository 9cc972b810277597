/**
 * Time and cancellation for the whole node, in one place: the injectable clock, the one `sleep`, the one
 * back-off formula, timeouts as abort signals. Everything that waits takes an AbortSignal, and abort
 * behaves the same everywhere: the wait rejects with the signal's reason (check `signal.aborted` to tell
 * a cancellation from a failure).
 */

/** The longest delay a Node timer takes (about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** Time, injected so that tests control deadlines and timeouts. */
export interface Clock {
  now: () => number
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => { clearTimeout(handle as ReturnType<typeof setTimeout>) }
}

export interface WaitOptions {
  signal?: AbortSignal
  clock?: Clock
}

/** Resolves after `ms` on the clock; rejects with `signal.reason` when the signal aborts (or had). */
export async function sleep (ms: number, opts: WaitOptions = {}): Promise<void> {
  const { signal, clock = systemClock } = opts
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clock.clearTimeout(handle); reject(signal?.reason) }
    const handle = clock.setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, Math.max(0, ms))
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

export interface BackoffPolicy {
  /** The wait after the first failure (attempt 1). */
  initialMs: number
  /** No wait is longer than this (before jitter). */
  maxMs: number
  /** Growth per attempt (default 2: doubling). */
  factor?: number
  /** Spread in [0, 1): the wait is drawn uniformly within ±jitter of the base, so many nodes do not retry in step. */
  jitter?: number
  /** In [0, 1); default Math.random (only drawn when `jitter` is set). */
  random?: () => number
}

/** The wait before retry number `attempt` (1 for the first retry): initial × factor^(attempt-1), capped, with jitter. */
export function backoff (attempt: number, policy: BackoffPolicy): number {
  const factor = policy.factor ?? 2
  // The exponent is bounded so that a long outage never overflows to Infinity (or NaN for initialMs 0).
  const base = Math.min(policy.maxMs, policy.initialMs * factor ** Math.min(Math.max(0, attempt - 1), 52))
  const jitter = policy.jitter ?? 0
  if (jitter <= 0) return base
  return Math.round(base * (1 - jitter + 2 * jitter * (policy.random ?? Math.random)()))
}

export class TimeoutError extends Error {
  override name = 'TimeoutError'
}

/** An AbortSignal that fires with a TimeoutError after `ms` on the clock, or when `opts.signal` fires; `clear` releases the timer. */
export function timeoutSignal (ms: number, reason: string, opts: WaitOptions = {}): { signal: AbortSignal, clear: () => void } {
  const { signal: parent, clock = systemClock } = opts
  const controller = new AbortController()
  const handle = clock.setTimeout(() => { controller.abort(new TimeoutError(reason)) }, Math.max(0, ms))
  const onParent = (): void => { controller.abort(parent?.reason) }
  if (parent?.aborted === true) controller.abort(parent.reason)
  else parent?.addEventListener('abort', onParent, { once: true })
  return {
    signal: controller.signal,
    clear: () => { clock.clearTimeout(handle); parent?.removeEventListener('abort', onParent) }
  }
}

/** `signal` bounded by a deadline of `ms` from now (a fresh one when there is no signal). */
export function withTimeout (signal: AbortSignal | undefined, ms: number): AbortSignal {
  const deadline = AbortSignal.timeout(ms)
  return signal == null ? deadline : AbortSignal.any([signal, deadline])
}

/**
 * Runs `task` (not at all when `signal` has aborted) and waits for it, or rejects with `signal.reason` as soon
 * as the signal aborts: for operations whose library takes no signal (the work may go on in the background;
 * the caller is released).
 */
export async function abortable<T> (task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal == null) return await task()
  signal.throwIfAborted()
  const promise = task()
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        onAbort = () => { reject(signal.reason) }
        signal.addEventListener('abort', onAbort, { once: true })
      })
    ])
  } finally {
    if (onAbort != null) signal.removeEventListener('abort', onAbort)
  }
}
