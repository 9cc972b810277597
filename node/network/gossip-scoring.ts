/**
 * Gossipsub peer-scoring parameters for this network. Our topics are low-rate (announcements, not data),
 * so the mesh-delivery penalty that the defaults apply to quiet topics is turned off, while invalid
 * messages are punished hard: a few malformed messages push a peer below the graylist threshold.
 */
import { createPeerScoreParams, createTopicScoreParams, type PeerScoreParams, type TopicScoreParams } from '@libp2p/gossipsub/score'

/** Each invalid message counts squared; three of them take a peer from 0 to below the graylist threshold (-80). */
export const INVALID_MESSAGE_WEIGHT = -10

export function topicScoreParams (): TopicScoreParams {
  return createTopicScoreParams({
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 300,
    firstMessageDeliveriesWeight: 1,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 50,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: INVALID_MESSAGE_WEIGHT,
    // Remembered for minutes (half-life ~70 s at the 1 s decay interval), so a spammer cannot outrun its penalty.
    invalidMessageDeliveriesDecay: 0.99
  })
}

export interface ScoreOptions {
  /** How many peers may share one IP before the colocation penalty starts (many nodes on one host in tests). */
  ipColocationThreshold: number
}

export function peerScoreParams ({ ipColocationThreshold }: ScoreOptions): PeerScoreParams {
  return createPeerScoreParams({
    IPColocationFactorThreshold: ipColocationThreshold,
    topics: {}
  })
}

/**
 * Penalties charged to the *author* of a message that this node judges harmful from what only it knows (its round,
 * its job's membership): such a message is dropped with gossipsub's Ignore, and the author (not the peer that
 * forwarded it, which may simply know less) loses score through gossipsub's application-specific score (P5).
 * Messages that every honest peer judges alike (malformed, a round past the job's end) are rejected instead,
 * which charges the forwarder: honest peers never forward those.
 */
export class AuthorPenalties {
  private readonly points = new Map<string, { value: number, at: number }>()

  constructor (private readonly halfLifeMs = AUTHOR_PENALTY_HALF_LIFE_MS, private readonly now: () => number = Date.now) {}

  charge (peer: string, points = 1): void {
    this.points.set(peer, { value: this.current(peer) + points, at: this.now() })
    if (this.points.size > 4096) for (const p of [...this.points.keys()]) if (this.current(p) < 0.01) this.points.delete(p)
  }

  /** Points held against `peer` now (halving every half-life). */
  current (peer: string): number {
    const p = this.points.get(peer)
    return p == null ? 0 : p.value * 0.5 ** ((this.now() - p.at) / this.halfLifeMs)
  }

  /** The application-specific score gossipsub weighs (APP_SPECIFIC_WEIGHT per point). */
  score (peer: string): number {
    return -this.current(peer)
  }
}

/** A penalty point is −10 score (gossipsub's default application-specific weight): 8 of them graylist a peer (−80). */
export const APP_SPECIFIC_WEIGHT = 10
/** Penalty points halve in 70 s, as invalid-message counts decay. */
export const AUTHOR_PENALTY_HALF_LIFE_MS = 70_000

/** Makes gossipsub's application-specific score read `penalties`. */
export function scoreAuthors (params: PeerScoreParams, penalties: AuthorPenalties): void {
  params.appSpecificScore = (peer) => penalties.score(peer)
  params.appSpecificWeight = APP_SPECIFIC_WEIGHT
}

/** Registers scoring for a topic the node joins at run time (job topics are not known at start). */
export function scoreTopic (params: PeerScoreParams, topic: string): void {
  params.topics[topic] ??= topicScoreParams()
}
