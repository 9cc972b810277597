/**
 * Schemas of the messages carried on the network's gossip topics, and the one parser that topic validators
 * use for every topic: a message that fails to parse is rejected at the edge (never delivered to the
 * application) and its sender is penalised by gossipsub's peer scoring.
 *
 *   /nearai/peers/1               PeerAnnouncement                     (here)
 *   /nearai/job/<job>/rounds/1    RoundAnnouncement                    (here)
 *   /nearai/job/<job>/ready/1     ReadyAnnouncement, GroupConfirmation (allreduce.ts: matchmaking)
 */
import { z } from 'zod'
import { multiaddr } from '@multiformats/multiaddr'
import { GOSSIP_VERSION } from './ids.ts'
import { decodeJson, encodeJson } from './codec.ts'
import { InvalidMessageError } from './errors.ts'
import { parseJobTopic, PEERS_TOPIC } from './topics.ts'
import { MAX_ROUND_SAMPLES, parseReadyMessage, type ReadyTopicMessage } from './allreduce.ts'
import { CidString, JobId, PeerIdString, Sha256Hex } from './primitives.ts'

/** Gossip carries announcements; bulk bytes move over direct streams or bitswap. */
export const MAX_GOSSIP_MESSAGE_BYTES = 64 * 1024

const MultiaddrString = z.string().max(256).refine(s => { try { multiaddr(s); return s.startsWith('/') } catch { return false } }, 'expected a multiaddr')

export const PeerAnnouncement = z.object({
  v: z.literal(GOSSIP_VERSION),
  type: z.literal('peer-announce'),
  peerId: PeerIdString,
  roles: z.array(z.enum(['peer', 'bootstrap'])).min(1).max(2),
  jobs: z.array(z.string().min(1).max(64)).max(64),
  backend: z.string().max(64).optional(),
  /** Where the peer listens, so that peers of the same job can dial it without a DHT lookup. */
  addrs: z.array(MultiaddrString).max(16).optional(),
  at: z.number().int().nonnegative()
}).strict()
export type PeerAnnouncement = z.infer<typeof PeerAnnouncement>

/** The outcome of one training round, published by each peer that completed it. */
export const RoundAnnouncement = z.object({
  v: z.literal(GOSSIP_VERSION),
  type: z.literal('round-result'),
  job: JobId,
  round: z.number().int().nonnegative(),
  peerId: PeerIdString,
  weightsSha256: Sha256Hex,
  checkpointCid: CidString.optional(),
  /** Accepted samples per contributor: the record that rewards are computed from. */
  contributions: z.array(z.object({ peer: PeerIdString, samples: z.number().int().nonnegative().max(MAX_ROUND_SAMPLES) }).strict()).max(1024),
  at: z.number().int().nonnegative()
}).strict()
export type RoundAnnouncement = z.infer<typeof RoundAnnouncement>

/** Messages of the peers and rounds topics. */
export const AnnouncementMessage = z.discriminatedUnion('type', [PeerAnnouncement, RoundAnnouncement])
export type AnnouncementMessage = z.infer<typeof AnnouncementMessage>

/** Any message of any topic. */
export type GossipMessage = AnnouncementMessage | ReadyTopicMessage

export function encodeGossip (message: GossipMessage): Uint8Array {
  return encodeJson(message)
}

/**
 * Parses a message received on `topic` from the peer `from` (the signed gossipsub author).
 * Checks schema, size, that the type belongs on this topic, and that a message speaking for a peer
 * was authored by that peer (no impersonation through relaying).
 */
export function parseGossip (topic: string, data: Uint8Array, from: string): GossipMessage {
  if (parseJobTopic(topic)?.kind === 'ready') return parseReadyMessage(topic, data, from)
  const message = decodeJson(AnnouncementMessage, data, MAX_GOSSIP_MESSAGE_BYTES, `gossip on ${topic}`)
  if (topic === PEERS_TOPIC) {
    if (message.type !== 'peer-announce') throw new InvalidMessageError(`gossip on ${topic}: unexpected type ${message.type}`)
  } else if (parseJobTopic(topic)?.kind === 'rounds') {
    if (message.type !== 'round-result') throw new InvalidMessageError(`gossip on ${topic}: unexpected type ${message.type}`)
    if (parseJobTopic(topic)?.job !== message.job) throw new InvalidMessageError(`gossip on ${topic}: job ${message.job} does not belong on this topic`)
  } else {
    throw new InvalidMessageError(`gossip on unknown topic ${topic}`)
  }
  if (message.peerId !== from) {
    throw new InvalidMessageError(`gossip on ${topic}: message speaks for ${message.peerId} but was authored by ${from}`)
  }
  return message
}
