/**
 * Adaptive timeouts: how long to wait for a peer is derived from what that peer has shown, not from a
 * constant. Each peer has an EWMA of its measured throughput and latency, kept across rounds; before a
 * peer has been measured, the speed it announced at matchmaking stands in (bounded: a hint can make the
 * wait shorter or longer only within the policy's floor and ceiling).
 */

export interface TimeoutPolicy {
  /** No wait is ever shorter than this (scheduling, GC pauses, start skew between members). */
  floorMs: number
  /** Waits are this many times the expected duration. */
  multiplier: number
  /** No wait is ever longer than this. */
  ceilingMs: number
  /** Assumed before anything is known about a peer. */
  defaultBps: number
  defaultLatencyMs: number
  /** EWMA weight of a new measurement. */
  alpha: number
  /** Throughput samples smaller than this are dominated by latency and are not used. */
  minSampleBytes: number
}

export const DEFAULT_TIMEOUT_POLICY: TimeoutPolicy = {
  floorMs: 3_000,
  multiplier: 4,
  ceilingMs: 10 * 60_000,
  defaultBps: 10 * 1024 * 1024,
  defaultLatencyMs: 100,
  alpha: 0.3,
  minSampleBytes: 64 * 1024
}

interface PeerSpeed { bps?: number, latencyMs?: number, gapMs?: number, hintBps?: number, samples: number }

export interface PeerSpeedSnapshot { peer: string, bps: number, latencyMs: number, samples: number }

export class PeerSpeedTracker {
  readonly policy: TimeoutPolicy
  private readonly peers = new Map<string, PeerSpeed>()

  constructor (policy: Partial<TimeoutPolicy> = {}) {
    this.policy = { ...DEFAULT_TIMEOUT_POLICY, ...policy }
  }

  private entry (peer: string): PeerSpeed {
    let e = this.peers.get(peer)
    if (e == null) { e = { samples: 0 }; this.peers.set(peer, e) }
    return e
  }

  /** The speed a peer announced; used only until it has been measured. */
  hint (peer: string, bps: number): void {
    if (Number.isFinite(bps) && bps > 0) this.entry(peer).hintBps = bps
  }

  observeTransfer (peer: string, bytes: number, ms: number): void {
    if (bytes < this.policy.minSampleBytes || !(ms > 0)) return
    const e = this.entry(peer)
    const bps = bytes / (ms / 1000)
    e.bps = e.bps == null ? bps : e.bps + this.policy.alpha * (bps - e.bps)
    e.samples++
  }

  observeLatency (peer: string, ms: number): void {
    if (!(ms >= 0)) return
    const e = this.entry(peer)
    e.latencyMs = e.latencyMs == null ? ms : e.latencyMs + this.policy.alpha * (ms - e.latencyMs)
  }

  /** The longest silence seen in an exchange with `peer` that completed: how bursty it is. */
  observeGap (peer: string, ms: number): void {
    if (!(ms >= 0)) return
    const e = this.entry(peer)
    e.gapMs = e.gapMs == null ? ms : e.gapMs + this.policy.alpha * (ms - e.gapMs)
  }

  bps (peer: string): number {
    const e = this.peers.get(peer)
    return e?.bps ?? e?.hintBps ?? this.policy.defaultBps
  }

  latencyMs (peer: string): number {
    return this.peers.get(peer)?.latencyMs ?? this.policy.defaultLatencyMs
  }

  /** Expected time for `peer` to move `bytes`. */
  expectedMs (peer: string, bytes: number): number {
    return this.latencyMs(peer) + (bytes / this.bps(peer)) * 1000
  }

  /** How long to wait for `peer` to move `bytes`: floor + multiplier × expected, capped. */
  timeoutMs (peer: string, bytes: number): number {
    return this.clamp(this.policy.floorMs + this.policy.multiplier * this.expectedMs(peer, bytes))
  }

  /**
   * How long `peer` may stay silent in the middle of an exchange before it counts as stalled:
   * floor + multiplier × the larger of its latency and the silences it showed in exchanges that
   * completed (a transfer that moves is never cut by size).
   */
  stallMs (peer: string): number {
    const gap = this.peers.get(peer)?.gapMs ?? 0
    return this.clamp(this.policy.floorMs + this.policy.multiplier * Math.max(this.latencyMs(peer), gap))
  }

  /** As {@link timeoutMs}, for the slowest of `peers` (a reducer waits for all of its contributors). */
  slowestTimeoutMs (peers: Iterable<string>, bytes: number): number {
    let worst = 0
    for (const p of peers) worst = Math.max(worst, this.expectedMs(p, bytes))
    return this.clamp(this.policy.floorMs + this.policy.multiplier * worst)
  }

  private clamp (ms: number): number {
    return Math.min(this.policy.ceilingMs, Math.max(this.policy.floorMs, Math.ceil(ms)))
  }

  snapshot (): PeerSpeedSnapshot[] {
    return [...this.peers.keys()].map(peer => ({ peer, bps: this.bps(peer), latencyMs: this.latencyMs(peer), samples: this.peers.get(peer)?.samples ?? 0 }))
  }
}
