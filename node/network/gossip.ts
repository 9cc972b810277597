/**
 * Typed gossip on top of gossipsub: every topic the node joins gets a validator that parses messages with
 * the protocol's schemas. A malformed message is rejected at the edge (gossipsub drops it, does not forward
 * it, and charges the sender's score) and never reaches the application's handlers.
 */
import { TopicValidatorResult, type GossipSub, type Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import type { Logger } from 'pino'
import { encodeGossip, parseGossip, type GossipMessage } from '../../protocol/gossip.ts'
import { AuthorPenalties, scoreAuthors, scoreTopic } from './gossip-scoring.ts'

export type GossipHandler = (message: GossipMessage, from: string) => void

/**
 * What a topic's owner makes of a well-formed message, judged against what it knows (its round, the job's
 * membership): `accept` delivers and forwards it; `ignore` drops it without forwarding and without cost (stale,
 * or the receiver may be behind); `penalize` drops it and charges its author (AuthorPenalties: for what only this
 * node can judge, so an honest forwarder that knows less is not charged); `reject` drops it and charges the peer
 * that sent it (gossipsub's invalid-message penalty, as for a malformed message: for what every honest peer judges
 * alike).
 */
export type GossipVerdict = 'accept' | 'ignore' | 'penalize' | 'reject'
export type GossipAdmission = (message: GossipMessage, from: string) => GossipVerdict

export interface GossipStats {
  published: number
  received: number
  rejected: number
  /** Well-formed messages the topic's admission dropped without charging the sender. */
  ignored: number
  /** Well-formed messages the topic's admission dropped, charging their author. */
  penalized: number
}

export class TypedGossip {
  readonly stats: GossipStats = { published: 0, received: 0, rejected: 0, ignored: 0, penalized: 0 }
  /** What authors of messages this node dropped as harmful are charged (gossipsub's application-specific score). */
  readonly penalties = new AuthorPenalties()
  private readonly handlers = new Map<string, Set<GossipHandler>>()
  private readonly admissions = new Map<string, GossipAdmission>()

  constructor (private readonly pubsub: GossipSub, private readonly log: Logger) {
    pubsub.addEventListener('message', (evt) => { this.deliver(evt.detail) })
    const score = (pubsub as unknown as { score?: { params: Parameters<typeof scoreAuthors>[0] } }).score
    if (score != null) scoreAuthors(score.params, this.penalties)
  }

  /**
   * Joins `topic`; `handler` sees only messages that passed validation and, when given, `admit` (the topic's
   * semantic check: the newest `admit` given for a topic is the one that judges it).
   */
  subscribe (topic: string, handler: GossipHandler, admit?: GossipAdmission): () => void {
    if (admit != null) this.admissions.set(topic, admit)
    if (!this.handlers.has(topic)) {
      this.handlers.set(topic, new Set())
      const score = (this.pubsub as unknown as { score?: { params: { topics: Record<string, unknown> } } }).score
      if (score != null) scoreTopic(score.params as never, topic)
      this.pubsub.topicValidators.set(topic, (peer, msg) => this.validate(peer, msg))
      this.pubsub.subscribe(topic)
    }
    const set = this.handlers.get(topic)!
    set.add(handler)
    return () => {
      set.delete(handler)
      if (set.size === 0) {
        this.handlers.delete(topic)
        this.pubsub.unsubscribe(topic)
        this.pubsub.topicValidators.delete(topic)
        this.admissions.delete(topic)
      }
    }
  }

  async publish (topic: string, message: GossipMessage): Promise<number> {
    const result = await this.pubsub.publish(topic, encodeGossip(message))
    this.stats.published++
    return result.recipients.length
  }

  private validate (propagationSource: PeerId, msg: Message): TopicValidatorResult {
    if (msg.type !== 'signed') {
      this.stats.rejected++
      return TopicValidatorResult.Reject
    }
    let message: GossipMessage
    try {
      message = parseGossip(msg.topic, msg.data, msg.from.toString())
    } catch (err) {
      this.stats.rejected++
      this.log.debug({ topic: msg.topic, from: msg.from.toString(), via: propagationSource.toString(), err: (err as Error).message }, 'rejected gossip message')
      return TopicValidatorResult.Reject
    }
    const admit = this.admissions.get(msg.topic)
    const verdict = admit == null ? 'accept' : safeVerdict(admit, message, msg.from.toString())
    if (verdict === 'accept') return TopicValidatorResult.Accept
    if (verdict === 'ignore') {
      this.stats.ignored++
      return TopicValidatorResult.Ignore
    }
    if (verdict === 'penalize') {
      this.stats.penalized++
      this.penalties.charge(msg.from.toString())
      this.log.debug({ topic: msg.topic, from: msg.from.toString(), via: propagationSource.toString(), type: message.type, round: 'round' in message ? message.round : undefined }, 'gossip message dropped; its author charged')
      return TopicValidatorResult.Ignore
    }
    this.stats.rejected++
    this.log.debug({ topic: msg.topic, from: msg.from.toString(), via: propagationSource.toString(), type: message.type, round: 'round' in message ? message.round : undefined }, 'gossip message refused by the topic\'s admission')
    return TopicValidatorResult.Reject
  }

  private deliver (msg: Message): void {
    const set = this.handlers.get(msg.topic)
    if (set == null || msg.type !== 'signed') return
    // Validation already ran in the topic validator; parsing again yields the typed value.
    let message: GossipMessage
    try {
      message = parseGossip(msg.topic, msg.data, msg.from.toString())
    } catch {
      return
    }
    // The admission ran in the validator; judged again here because what the node knows may have changed since.
    const admit = this.admissions.get(msg.topic)
    if (admit != null && safeVerdict(admit, message, msg.from.toString()) !== 'accept') return
    this.stats.received++
    for (const handler of set) {
      try {
        handler(message, msg.from.toString())
      } catch (err) {
        this.log.error({ err, topic: msg.topic }, 'gossip handler failed')
      }
    }
  }
}

/** An admission that throws ignores the message (never a penalty for the receiver's own bug). */
function safeVerdict (admit: GossipAdmission, message: GossipMessage, from: string): GossipVerdict {
  try {
    return admit(message, from)
  } catch {
    return 'ignore'
  }
}
