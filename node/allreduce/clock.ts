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

/** Resolves after `ms` on `clock`, or rejects when `signal` aborts. */
export async function sleep (clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clock.clearTimeout(handle); reject(signal?.reason) }
    const handle = clock.setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, Math.max(0, ms))
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** An AbortSignal that fires after `ms` on `clock` (or when `parent` fires); `clear` releases the timer. */
export function timeoutSignal (clock: Clock, ms: number, reason: string, parent?: AbortSignal): { signal: AbortSignal, clear: () => void } {
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

export class TimeoutError extends Error {
  override name = 'TimeoutError'
}
