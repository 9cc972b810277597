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

/**
 * Fires `onStall` when `touch()` has not been called for `windowMs`: a transfer that is slow but moving is
 * left alone; one that has gone silent is given up on.
 */
export class StallTimer {
  private handle: unknown
  private last: number
  private done = false

  /** `lastSeen`, when given, reports activity seen elsewhere (e.g. the same peer on another stream). */
  constructor (private readonly clock: Clock, private windowMs: number, private readonly onStall: (silentMs: number) => void, private readonly lastSeen?: () => number | undefined) {
    this.last = clock.now()
    this.arm(windowMs)
  }

  private arm (ms: number): void {
    this.handle = this.clock.setTimeout(() => {
      if (this.done) return
      const silent = this.clock.now() - Math.max(this.last, this.lastSeen?.() ?? -Infinity)
      if (silent >= this.windowMs) { this.done = true; this.onStall(silent) } else this.arm(this.windowMs - silent)
    }, ms)
  }

  /** The longest silence seen so far (ms): a peer's usual gaps widen its future windows. */
  longestGap = 0

  touch (): void {
    const now = this.clock.now()
    this.longestGap = Math.max(this.longestGap, now - this.last)
    this.last = now
  }

  /** Changes the window (e.g. from the handshake's to the transfer's); counts from now. */
  setWindow (ms: number): void {
    this.windowMs = ms
    this.last = this.clock.now()
    this.clock.clearTimeout(this.handle)
    if (!this.done) this.arm(ms)
  }

  clear (): void {
    this.done = true
    this.clock.clearTimeout(this.handle)
  }
}
