/**
 * Prometheus metrics of a bootstrap node, read from the live node at scrape time.
 */
import { Registry, Gauge, Counter } from 'prom-client'
import type { PeerNode } from '../node/network/peer-node.ts'

const RELAY_STOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/stop'

export interface MetricsSources {
  node: PeerNode
  /** Bytes of pinned content, when the node pins datasets. */
  pinnedBytes?: () => Promise<number>
  /** Configured public datasets by state (pending, fetching, pinned, failed), when the node pins datasets. */
  pinnedDatasets?: () => Record<string, number>
}

export function createMetricsRegistry ({ node, pinnedBytes, pinnedDatasets }: MetricsSources): Registry {
  const registry = new Registry()
  const libp2p = node.libp2p
  new Gauge({
    name: 'nearai_peers_connected',
    help: 'Distinct peers with an open connection',
    registers: [registry],
    collect () { this.set(node.connectedPeers().length) }
  })
  new Gauge({
    name: 'nearai_dht_routing_table_size',
    help: 'Peers in the Kademlia routing table',
    registers: [registry],
    collect () { this.set(libp2p.services.dht.routingTable.size) }
  })
  new Gauge({
    name: 'nearai_relay_reservations',
    help: 'Circuit relay v2 reservations currently held by peers behind NAT',
    registers: [registry],
    collect () { this.set(libp2p.services.relay?.reservations.size ?? 0) }
  })
  new Gauge({
    name: 'nearai_relayed_connections',
    help: 'Connections currently relayed through this node',
    registers: [registry],
    collect () {
      let n = 0
      for (const conn of libp2p.getConnections()) {
        n += conn.streams.filter(s => s.protocol === RELAY_STOP_PROTOCOL).length
      }
      this.set(n)
    }
  })
  const gossipIn = new Counter({ name: 'nearai_gossip_messages_in_total', help: 'Valid gossip messages received (all topics)', registers: [registry] })
  libp2p.services.pubsub.addEventListener('gossipsub:message', () => { gossipIn.inc() })
  new Gauge({
    name: 'nearai_gossip_messages_out_total',
    help: 'Gossip messages published by this node',
    registers: [registry],
    collect () { this.set(node.gossip.stats.published) }
  })
  new Gauge({
    name: 'nearai_gossip_messages_rejected_total',
    help: 'Gossip messages rejected by validation',
    registers: [registry],
    collect () { this.set(node.gossip.stats.rejected) }
  })
  if (pinnedBytes != null) {
    new Gauge({
      name: 'nearai_pinned_bytes',
      help: 'Bytes of pinned content (public datasets kept available)',
      registers: [registry],
      async collect () { this.set(await pinnedBytes()) }
    })
  }
  if (pinnedDatasets != null) {
    new Gauge({
      name: 'nearai_pinned_datasets',
      help: 'Public datasets this node is configured to keep pinned, by state (pending, fetching, pinned, failed)',
      labelNames: ['state'],
      registers: [registry],
      collect () {
        for (const [state, n] of Object.entries(pinnedDatasets())) this.set({ state }, n)
      }
    })
  }
  return registry
}
