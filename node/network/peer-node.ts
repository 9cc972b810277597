/**
 * A running NearAI node: the libp2p/Helia host plus the network behaviour every node shares, whether it is
 * a training peer or a bootstrap node: dialling the bootstrap list (with retries), typed gossip, presence
 * announcements on the peers topic, topic rendezvous for job groups, and the repairs of
 * NetworkHealth.
 *
 * Peers of one job meet two ways: the DHT rendezvous (run-job) and presence. A presence announcement names
 * the jobs a peer runs and where it listens; a node that runs one of those jobs and is not connected to the
 * announcer dials it. Presence travels through the bootstrap nodes (every node subscribes to the peers
 * topic), so it still works when a node's DHT routing table is empty. A peer behind NAT announces its relay
 * (`/p2p-circuit`) addresses after its direct ones, so that others reach it through the relay.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import type { Logger } from 'pino'
import { createHost, type Host, type NodeHelia, type NodeLibp2p } from './host.ts'
import type { HostNetworkOptions } from './libp2p-options.ts'
import { TypedGossip } from './gossip.ts'
import { joinRendezvous, type RendezvousResult } from './rendezvous.ts'
import { NetworkHealth } from './network-health.ts'
import { watchRelayedConnections } from './limited-connections.ts'
import { PEERS_TOPIC } from '../../protocol/topics.ts'
import { GOSSIP_VERSION } from '../../protocol/ids.ts'
import type { PeerAnnouncement } from '../../protocol/gossip.ts'

export type NodeRole = 'peer' | 'bootstrap'

/** By default a node dials same-job peers from their presence until it is connected to this many of them. */
export const MAX_PRESENCE_LINKS = 16

export interface PeerNodeOptions extends Omit<HostNetworkOptions, 'privateKey'> {
  privateKey: PrivateKey
  role: NodeRole
  logger: Logger
  dataDir?: string
  /** How often presence is re-announced on the peers topic. */
  announceIntervalMs?: number
  /** Dial same-job peers from their presence until connected to this many of them (MAX_PRESENCE_LINKS). */
  maxPresenceLinks?: number
  /** How often NetworkHealth looks for unidentified connections and an empty DHT routing table. */
  healthIntervalMs?: number
  backend?: string
  now?: () => number
}

export class PeerNode {
  readonly gossip: TypedGossip
  readonly health: NetworkHealth
  private readonly jobSet = new Set<string>()
  private readonly presenceTimers = new Set<NodeJS.Timeout>()
  /** Peers whose presence named a job of ours, per job. */
  private readonly jobPeers = new Map<string, Set<string>>()
  private readonly presenceDialing = new Set<string>()
  /** Peers dialled because their presence named a job of ours (tests and logs read it). */
  presenceDials = 0
  private announceTimer?: NodeJS.Timeout
  private redialTimer?: NodeJS.Timeout
  private stopped = false
  private readonly unwatchRelayed: () => void
  /** How many bootstrap nodes answered the first dial at start. */
  bootstrapReached = 0

  private constructor (readonly host: Host, private readonly opts: PeerNodeOptions) {
    const log = opts.logger
    this.gossip = new TypedGossip(host.libp2p.services.pubsub, log.child({ component: 'gossip' }))
    this.health = new NetworkHealth(host.libp2p, log.child({ component: 'network-health' }), opts.healthIntervalMs)
    this.unwatchRelayed = watchRelayedConnections(host.libp2p, log.child({ component: 'relay' }))
  }

  static async start (opts: PeerNodeOptions): Promise<PeerNode> {
    const host = await createHost({ ...opts })
    const node = new PeerNode(host, opts)
    node.gossip.subscribe(PEERS_TOPIC, (message) => { if (message.type === 'peer-announce') node.onPresence(message) })
    node.bootstrapReached = await node.connectBootstrap()
    node.health.start()
    const interval = opts.announceIntervalMs ?? 30_000
    node.announceTimer = setInterval(() => { void node.announce().catch(() => {}) }, interval)
    node.announceTimer.unref()
    return node
  }

  get libp2p (): NodeLibp2p { return this.host.libp2p }
  get helia (): NodeHelia { return this.host.helia }
  get peerId (): string { return this.host.peerId }
  get log (): Logger { return this.opts.logger }
  get multiaddrs (): string[] { return this.libp2p.getMultiaddrs().map(String) }

  /**
   * Dials every bootstrap address; returns how many answered. Unreachable ones are retried in the
   * background with backoff, so a node started before its bootstrap still joins once it comes up.
   */
  async connectBootstrap (): Promise<number> {
    const list = this.opts.bootstrap ?? []
    const results = await Promise.allSettled(list.map(async addr => await this.libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) })))
    const failed = list.filter((_, i) => results[i].status === 'rejected')
    failed.forEach((addr, i) => this.log.warn({ addr, err: ((results[i] as PromiseRejectedResult).reason as Error)?.message }, 'bootstrap node unreachable; will retry'))
    if (failed.length > 0) this.scheduleRedial(failed, 1000)
    return list.length - failed.length
  }

  private scheduleRedial (addrs: string[], delayMs: number): void {
    if (this.stopped) return
    this.redialTimer = setTimeout(() => {
      void (async () => {
        const still: string[] = []
        for (const addr of addrs) {
          try { await this.libp2p.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) }) } catch { still.push(addr) }
        }
        if (still.length > 0) this.scheduleRedial(still, Math.min(delayMs * 2, 60_000))
        else this.log.info('connected to bootstrap nodes')
      })()
    }, delayMs)
    this.redialTimer.unref()
  }

  /** Publishes this node's presence on the peers topic. */
  async announce (): Promise<number> {
    const message: PeerAnnouncement = {
      v: GOSSIP_VERSION,
      type: 'peer-announce',
      peerId: this.peerId,
      roles: [this.opts.role],
      jobs: [...this.jobSet],
      backend: this.opts.backend,
      addrs: announcedAddrs(this.multiaddrs),
      at: (this.opts.now ?? Date.now)()
    }
    return await this.gossip.publish(PEERS_TOPIC, message)
  }

  /** The jobs this node trains on. */
  get jobs (): ReadonlySet<string> { return this.jobSet }

  /**
   * Starts naming `job` in this node's presence: announces now and again after 3 and 10 s (an announcement
   * made before gossipsub has meshed the peers topic reaches no one), then with the regular interval.
   */
  joinJob (job: string): void {
    this.jobSet.add(job)
    void this.announce().catch(() => {})
    for (const delay of [3_000, 10_000]) {
      const timer = setTimeout(() => { this.presenceTimers.delete(timer); void this.announce().catch(() => {}) }, delay)
      timer.unref()
      this.presenceTimers.add(timer)
    }
  }

  leaveJob (job: string): void {
    this.jobSet.delete(job)
    this.jobPeers.delete(job)
  }

  /** Dials the announcer when it runs a job of ours and is not connected. */
  private onPresence (message: PeerAnnouncement): void {
    if (this.stopped || message.peerId === this.peerId) return
    const shared = message.jobs.filter(job => this.jobSet.has(job))
    if (shared.length === 0) return
    for (const job of shared) {
      const seen = this.jobPeers.get(job) ?? new Set<string>()
      seen.delete(message.peerId)
      seen.add(message.peerId) // most recent last; the oldest go first past 4096
      if (seen.size > 4096) seen.delete(seen.values().next().value!)
      this.jobPeers.set(job, seen)
    }
    // Dials in flight count as links, so that announcements heard together do not all get dialled.
    const connected = new Set([...this.connectedPeers(), ...this.presenceDialing])
    if (connected.has(message.peerId)) return
    // Gossip needs a handful of links per topic, not all of them: in a big job, stop at maxPresenceLinks.
    const enough = this.opts.maxPresenceLinks ?? MAX_PRESENCE_LINKS
    if (shared.every(job => [...this.jobPeers.get(job)!].filter(p => connected.has(p)).length >= enough)) return
    this.presenceDialing.add(message.peerId)
    void (async () => {
      try {
        const peerId = peerIdFromString(message.peerId)
        const addrs = (message.addrs ?? []).map(a => multiaddr(a))
        if (addrs.length > 0) await this.libp2p.peerStore.merge(peerId, { multiaddrs: addrs })
        await this.libp2p.dial(peerId, { signal: AbortSignal.timeout(20_000) })
        this.presenceDials++
        this.log.info({ peer: message.peerId, jobs: shared }, 'met a peer of the same job through its presence')
      } catch (err) {
        this.log.debug({ peer: message.peerId, err: (err as Error).message }, 'dial of a same-job peer from its presence failed')
      } finally {
        this.presenceDialing.delete(message.peerId)
      }
    })()
  }

  /** Meets the other peers of `topic` through the DHT so that gossipsub can mesh with them. */
  async rendezvous (topic: string, options: { maxPeers?: number, signal?: AbortSignal } = {}): Promise<RendezvousResult> {
    return await joinRendezvous(this.libp2p, topic, this.log, options)
  }

  connectedPeers (): string[] {
    return [...new Set(this.libp2p.getConnections().map(c => c.remotePeer.toString()))]
  }

  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearInterval(this.announceTimer)
    clearTimeout(this.redialTimer)
    for (const timer of this.presenceTimers) clearTimeout(timer)
    this.health.stop()
    this.unwatchRelayed()
    await this.host.stop()
  }
}

/**
 * The addresses a presence announcement carries (at most 16): direct ones first, then relay (`/p2p-circuit`) ones,
 * which are all a peer behind NAT has; libp2p dials direct addresses before relayed ones anyway.
 */
export function announcedAddrs (addrs: string[]): string[] {
  const relayed = (a: string): boolean => a.includes('/p2p-circuit')
  return [...addrs.filter(a => !relayed(a)), ...addrs.filter(relayed)].slice(0, 16)
}
