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

/** Registers scoring for a topic the node joins at run time (job topics are not known at start). */
export function scoreTopic (params: PeerScoreParams, topic: string): void {
  params.topics[topic] ??= topicScoreParams()
}
