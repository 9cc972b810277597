/**
 * A running NearAI node: the libp2p/Helia host plus the network behaviour every node shares, whether it is
 * a training peer or a bootstrap node: dialling the bootstrap list (with retries), typed gossip, signed DHT
 * records, presence announcements on the peers topic, and topic rendezvous for job groups.
 */
import { multiaddr } from '@multiformats/multiaddr'
import type { PrivateKey } from '@libp2p/interface'
import type { Logger } from 'pino'
import { createHost, type Host, type NodeHelia, type NodeLibp2p } from './host.ts'
import type { HostNetworkOptions } from './libp2p-options.ts'
import { TypedGossip } from './gossip.ts'
import { DhtRecords } from './dht-records.ts'
import { joinRendezvous, type RendezvousResult } from './rendezvous.ts'
import { PEERS_TOPIC } from '../../protocol/topics.ts'
import { GOSSIP_VERSION } from '../../protocol/ids.ts'
import type { PeerAnnouncement } from '../../protocol/gossip.ts'

export type NodeRole = 'peer' | 'bootstrap'

export interface PeerNodeOptions extends Omit<HostNetworkOptions, 'privateKey'> {
  privateKey: PrivateKey
  role: NodeRole
  logger: Logger
  dataDir?: string
  /** How often presence is re-announced on the peers topic. */
  announceIntervalMs?: number
  backend?: string
  now?: () => number
}

export class PeerNode {
  readonly gossip: TypedGossip
  readonly records: DhtRecords
  readonly jobs = new Set<string>()
  private announceTimer?: NodeJS.Timeout
  private redialTimer?: NodeJS.Timeout
  private stopped = false
  /** How many bootstrap nodes answered the first dial at start. */
  bootstrapReached = 0

  private constructor (readonly host: Host, private readonly opts: PeerNodeOptions) {
    const log = opts.logger
    this.gossip = new TypedGossip(host.libp2p.services.pubsub, log.child({ component: 'gossip' }))
    this.records = new DhtRecords({ dht: host.libp2p.services.dht, privateKey: opts.privateKey, peerId: host.peerId, now: opts.now })
  }

  static async start (opts: PeerNodeOptions): Promise<PeerNode> {
    const host = await createHost({ ...opts })
    const node = new PeerNode(host, opts)
    node.gossip.subscribe(PEERS_TOPIC, () => {})
    node.bootstrapReached = await node.connectBootstrap()
    const interval = opts.announceIntervalMs ?? 60_000
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
      jobs: [...this.jobs],
      backend: this.opts.backend,
      at: (this.opts.now ?? Date.now)()
    }
    return await this.gossip.publish(PEERS_TOPIC, message)
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
    await this.host.stop()
  }
}
