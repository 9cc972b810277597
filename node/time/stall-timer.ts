/**
 * Fires `onStall` when `touch()` has not been called for `windowMs`: a transfer that is slow but moving is
 * left alone; one that has gone silent is given up on.
 */
import type { Clock } from './clock.ts'

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
