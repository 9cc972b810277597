/**
 * What a validator hears on a job's rounds topic: per round, the weights hashes the training peers
 * announced and the state CIDs behind each. Announcements are hints, never evidence: they say which CID to
 * fetch; the validator attests only what it fetched and checked itself.
 */
import type { TypedGossip } from '../network/gossip.ts'
import type { RoundAnnouncement } from '../../protocol/gossip.ts'
import { jobRoundsTopic } from '../../protocol/topics.ts'

export interface AnnouncedRound {
  round: number
  /** The weights hash most announcers of the round hold. */
  weightsSha256: string
  /** Peers that announced that hash. */
  peers: number
  /** CIDs announced with that hash, most announced first (ties: in string order), so validators pick alike. */
  cids: string[]
}

interface HashVotes { peers: Set<string>, cids: Map<string, Set<string>> }

export class RoundAnnouncements {
  private readonly rounds = new Map<number, Map<string, HashVotes>>()
  private readonly listeners = new Set<(round: number) => void>()
  private unsubscribe?: () => void

  constructor (private readonly job: string) {}

  start (gossip: TypedGossip): void {
    this.unsubscribe = gossip.subscribe(jobRoundsTopic(this.job), (message) => {
      if (message.type === 'round-result') this.record(message)
    })
  }

  stop (): void {
    this.unsubscribe?.()
    this.unsubscribe = undefined
  }

  /** Calls `listener` with the round of every announcement recorded from now on; returns the unsubscribe. */
  onAnnouncement (listener: (round: number) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  record (m: RoundAnnouncement): void {
    if (m.job !== this.job) return
    let byHash = this.rounds.get(m.round)
    if (byHash == null) { byHash = new Map(); this.rounds.set(m.round, byHash) }
    // One vote per peer and round: a later announcement replaces its earlier one.
    for (const votes of byHash.values()) {
      votes.peers.delete(m.peerId)
      for (const peers of votes.cids.values()) peers.delete(m.peerId)
    }
    let votes = byHash.get(m.weightsSha256)
    if (votes == null) { votes = { peers: new Set(), cids: new Map() }; byHash.set(m.weightsSha256, votes) }
    votes.peers.add(m.peerId)
    if (m.checkpointCid != null) {
      const peers = votes.cids.get(m.checkpointCid) ?? new Set<string>()
      peers.add(m.peerId)
      votes.cids.set(m.checkpointCid, peers)
    }
    for (const l of [...this.listeners]) l(m.round)
  }

  /** The round as announced: its majority hash and that hash's CIDs; undefined when nobody announced it. */
  get (round: number): AnnouncedRound | undefined {
    const byHash = this.rounds.get(round)
    if (byHash == null) return undefined
    let best: [string, HashVotes] | undefined
    for (const entry of byHash) {
      if (entry[1].peers.size === 0) continue
      if (best == null || entry[1].peers.size > best[1].peers.size || (entry[1].peers.size === best[1].peers.size && entry[0] < best[0])) best = entry
    }
    if (best == null) return undefined
    const cids = [...best[1].cids].filter(([, peers]) => peers.size > 0)
      .sort((a, b) => b[1].size - a[1].size || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([cid]) => cid)
    return { round, weightsSha256: best[0], peers: best[1].peers.size, cids }
  }

  /** The announced rounds after `round`, nearest first. */
  later (round: number): AnnouncedRound[] {
    return [...this.rounds.keys()].filter(r => r > round).sort((a, b) => a - b)
      .map(r => this.get(r)).filter((r): r is AnnouncedRound => r != null)
  }
}
