/**
 * How long a round's group waits for its peers to be ready: sized from this peer's measured training time
 * (the pace of the job), within a floor and a cap. The train step reports its time; the reduce step asks for
 * the window.
 */

export interface MatchWindowPolicy {
  floorMs: number
  capMs: number
  /** Window = fraction × (EWMA of this peer's training time per round), within [floorMs, capMs]. */
  fraction: number
}

/**
 * Generous on purpose: the group closes as soon as every connected peer of the job is ready, so the window
 * only costs time when a connected peer is stalled; too short a window splits rounds between peers whose
 * speeds differ (a loaded machine, a slower GPU), the failure users of decentralized training complain of most.
 */
export const DEFAULT_MATCH_WINDOW: MatchWindowPolicy = { floorMs: 10_000, capMs: 120_000, fraction: 3 }

/** Weight of the newest training time in the running average. */
const EWMA_WEIGHT = 0.3

export class MatchWindow {
  readonly policy: MatchWindowPolicy
  private trainEwmaMs?: number
  private observations = 0

  constructor (policy: Partial<MatchWindowPolicy> = {}) {
    this.policy = { ...DEFAULT_MATCH_WINDOW, ...policy }
  }

  /** The time the inner steps of a round took. */
  observeTrainingTime (ms: number): void {
    this.observations++
    this.trainEwmaMs = this.trainEwmaMs == null ? ms : (1 - EWMA_WEIGHT) * this.trainEwmaMs + EWMA_WEIGHT * ms
  }

  windowMs (): number {
    // A job's first round: peers differ in start-up time (installing, fetching data) far more than in
    // training speed, and one measurement says little: wait up to the cap for the connected peers.
    if (this.trainEwmaMs == null || this.observations < 2) return this.policy.capMs
    const adaptive = this.trainEwmaMs * this.policy.fraction
    return Math.min(this.policy.capMs, Math.max(this.policy.floorMs, adaptive))
  }
}
