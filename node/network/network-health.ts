/**
 * Keeps a node's view of the network from silently going empty.
 *
 * Two things libp2p does once, at connection time, and never again: identify (which tells the registrar,
 * and so gossipsub and the DHT, which protocols a peer speaks) and the DHT's liveness ping of a new contact
 * (a contact that misses it is not added to the routing table). On a loaded machine both can time out, and
 * a node then holds a connection to its bootstrap node that neither gossipsub nor the DHT uses: no topic
 * rendezvous, no gossip, a peer that trains alone forever. Gossipsub likewise opens its outbound stream to
 * a peer once; when that fails the peer never hears this node's subscriptions or messages. Every
 * `intervalMs` this re-runs identify on connections whose peer's protocols are still unknown, offers the
 * connected DHT servers to an empty routing table, and reconnects to a gossipsub peer that has had no
 * outbound gossip stream for two checks in a row (a new connection makes gossipsub open one again), whether
 * that peer is connected directly or only through a relay (gossip runs on relayed connections too).
 */
import type { Logger } from 'pino'
import type { PeerId } from '@libp2p/interface'
import type { NodeLibp2p } from './host.ts'
import { DHT_PROTOCOL } from '../../protocol/ids.ts'

const GOSSIPSUB_PROTOCOLS = ['/meshsub/1.2.0', '/meshsub/1.1.0', '/meshsub/1.0.0']

/** The part of gossipsub's state used here; not in the package's public types. */
interface GossipsubLike {
  streamsOutbound?: Map<string, unknown>
}

/** The part of kad-dht's routing table used here; not in the package's public types. */
interface RoutingTableLike {
  size: number
  add: (peerId: PeerId, options?: { signal?: AbortSignal }) => Promise<void>
}

export interface NetworkSnapshot {
  connections: number
  /** Peers connected only through a relay (limited connections): their traffic counts against the relay's limits. */
  relayedOnly: number
  /** Connected peers whose protocols identify has not reported yet. */
  unidentified: number
  dhtTable: number
}

export class NetworkHealth {
  private timer?: NodeJS.Timeout
  private running = false
  private readonly controller = new AbortController()
  /** Repairs done so far (tests and logs read them). */
  readonly repairs = { identify: 0, dhtTable: 0, gossipLink: 0 }
  /** Gossipsub peers seen without an outbound stream at the last check. */
  private linkless = new Set<string>()

  constructor (private readonly libp2p: NodeLibp2p, private readonly log: Logger, private readonly intervalMs = 10_000) {}

  start (): void {
    this.timer = setInterval(() => { void this.check() }, this.intervalMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.controller.abort()
  }

  private get routingTable (): RoutingTableLike {
    return (this.libp2p.services.dht as unknown as { routingTable: RoutingTableLike }).routingTable
  }

  async snapshot (): Promise<NetworkSnapshot> {
    const peers = this.connectedPeers()
    const direct = new Set(peers.map(String))
    const relayedOnly = this.connectedPeers({ limited: true }).filter(p => !direct.has(p.toString())).length
    let unidentified = 0
    for (const peer of peers) if ((await this.protocolsOf(peer)).length === 0) unidentified++
    return { connections: peers.length, relayedOnly, unidentified, dhtTable: this.routingTable.size }
  }

  /** One pass of the repairs; returns what it did. Runs one pass at a time. */
  async check (): Promise<{ identified: number, offered: number, reconnected: number }> {
    if (this.running) return { identified: 0, offered: 0, reconnected: 0 }
    this.running = true
    try {
      // Each peer's protocols are read from the peer store once per check (identify refreshes them).
      const known = new Map<string, string[]>()
      const protocolsOf = async (peer: PeerId): Promise<string[]> => {
        const id = peer.toString()
        if (!known.has(id)) known.set(id, await this.protocolsOf(peer))
        return known.get(id)!
      }
      let identified = 0
      let offered = 0
      for (const peer of this.connectedPeers()) {
        if ((await protocolsOf(peer)).length > 0) continue
        const connection = this.libp2p.getConnections(peer)[0]
        if (connection == null || this.controller.signal.aborted) continue
        try {
          const result = await this.libp2p.services.identify.identify(connection, { signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(30_000)]) })
          known.set(peer.toString(), result.protocols)
          identified++
          this.repairs.identify++
          this.log.info({ peer: peer.toString() }, 'identified a connected peer whose first identify had failed')
        } catch (err) {
          this.log.debug({ peer: peer.toString(), err: (err as Error).message }, 'identify retry failed')
        }
      }
      if (this.routingTable.size === 0) {
        for (const peer of this.connectedPeers()) {
          if (!(await protocolsOf(peer)).includes(DHT_PROTOCOL)) continue
          try {
            await this.routingTable.add(peer, { signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(30_000)]) })
            offered++
          } catch (err) {
            this.log.debug({ peer: peer.toString(), err: (err as Error).message }, 'routing table add failed')
          }
        }
        if (offered > 0) {
          this.repairs.dhtTable++
          this.log.info({ offered, size: this.routingTable.size }, 'the DHT routing table was empty; offered it the connected DHT servers again')
        }
      }
      const reconnected = await this.repairGossipLinks(protocolsOf)
      return { identified, offered, reconnected }
    } finally {
      this.running = false
    }
  }

  private async repairGossipLinks (protocolsOf: (peer: PeerId) => Promise<string[]>): Promise<number> {
    const outbound = (this.libp2p.services.pubsub as unknown as GossipsubLike).streamsOutbound
    if (outbound == null) return 0
    const linkless = new Set<string>()
    let reconnected = 0
    for (const peer of this.connectedPeers({ limited: true })) {
      const id = peer.toString()
      if (outbound.has(id)) continue
      if (!(await protocolsOf(peer)).some(p => GOSSIPSUB_PROTOCOLS.includes(p))) continue
      if (!this.linkless.has(id)) { linkless.add(id); continue }
      try {
        await this.libp2p.hangUp(peer, { signal: AbortSignal.timeout(10_000) })
        await this.libp2p.dial(peer, { signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(30_000)]) })
        reconnected++
        this.repairs.gossipLink++
        this.log.info({ peer: id }, 'reconnected to a peer gossipsub had no outbound stream to')
      } catch (err) {
        this.log.debug({ peer: id, err: (err as Error).message }, 'reconnect for gossip failed')
      }
    }
    this.linkless = linkless
    return reconnected
  }

  /** Peers with an unlimited connection; with `limited`, also those connected only through a relay. */
  private connectedPeers ({ limited = false }: { limited?: boolean } = {}): PeerId[] {
    const seen = new Map<string, PeerId>()
    for (const c of this.libp2p.getConnections()) if (limited || c.limits == null) seen.set(c.remotePeer.toString(), c.remotePeer)
    return [...seen.values()]
  }

  private async protocolsOf (peer: PeerId): Promise<string[]> {
    try { return (await this.libp2p.peerStore.get(peer)).protocols } catch { return [] }
  }
}
