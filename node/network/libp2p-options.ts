/**
 * Builds the libp2p configuration of a NearAI node from its config: TCP (+ circuit relay v2 as a client),
 * Noise, Yamux, identify, ping, AutoNAT, DCUtR, this network's own Kademlia DHT with signed-record validation,
 * and gossipsub with strict signatures and peer scoring, also run over relayed (limited) connections so that a
 * peer behind NAT trains. Bootstrap nodes add the relay server with the limits their operator set.
 */
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper } from '@libp2p/kad-dht'
import { gossipsub } from '@libp2p/gossipsub'
import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { autoNAT } from '@libp2p/autonat'
import { dcutr } from '@libp2p/dcutr'
import type { ConnectionGater, PrivateKey } from '@libp2p/interface'
import type { Libp2pOptions } from 'libp2p'
import { DHT_PROTOCOL, AGENT_NAME } from '../../protocol/ids.ts'
import { DHT_NAMESPACE } from '../../protocol/dht-keys.ts'
import { selectRecord, verifyRecord } from '../../protocol/records.ts'
import { peerScoreParams } from './gossip-scoring.ts'
import { nativeTls } from './native-tls.ts'
import { relayServerInit, type RelayServerLimits } from './relay-limits.ts'

/** Gossip messages are announcements; the 1 MiB cap matches go-libp2p's default. */
export const MAX_GOSSIP_FRAME_BYTES = 1024 * 1024

export interface HostNetworkOptions {
  privateKey: PrivateKey
  listen: string[]
  announce?: string[]
  bootstrap?: string[]
  dhtServer: boolean
  relayClient: boolean
  /** Run a circuit relay v2 server (bootstrap nodes); limits left out take DEFAULT_RELAY_LIMITS. */
  relayServer?: Partial<RelayServerLimits>
  maxConnections: number
  /** New inbound connections accepted per second from one host (libp2p's default is 5); bootstrap nodes need more. */
  inboundConnectionsPerSecond?: number
  /** Keep private and loopback addresses in DHT answers: needed on 127.0.0.1 and in private deployments. */
  allowPrivateAddresses?: boolean
  ipColocationThreshold?: number
  /** Kademlia bucket size; the default 20 is what IPFS uses. */
  kBucketSize?: number
  agentVersion?: string
  /** Refuse some peers or addresses (tests use it to keep two peers apart). */
  connectionGater?: ConnectionGater
}

export function buildLibp2pOptions (opts: HostNetworkOptions): Libp2pOptions<Record<string, unknown>> {
  const services: Record<string, unknown> = {
    // 5 s (the default) is too short for a machine busy training; a failed identify leaves the connection unused.
    identify: identify({ timeout: 15_000 }),
    // Tells connected peers when this node's protocols change. A connection identified before a handler was
    // registered (seen with the DHT's server protocol at start, once native TLS made handshakes fast enough to
    // win that race) otherwise stays unknown to the remote until NetworkHealth re-identifies it (10 s).
    identifyPush: identifyPush({ timeout: 15_000 }),
    ping: ping(),
    // AutoNAT asks peers to dial this node back on its public addresses: confirmed ones are announced (libp2p
    // announces an unconfirmed public address to no one), and it answers others' requests. Private and loopback
    // addresses are never checked nor dialled back, so on 127.0.0.1 and private networks it stays idle.
    autoNAT: autoNAT(),
    // DCUtR replaces a relayed connection by a direct one where it can: the inbound side dials the other's public
    // addresses (or both dial at once after a sync over the relay). It exchanges public addresses only, so it
    // never upgrades between private or loopback addresses, and the relayed connection then stays in use.
    dcutr: dcutr(),
    dht: kadDHT({
      protocol: DHT_PROTOCOL,
      clientMode: !opts.dhtServer,
      kBucketSize: opts.kBucketSize,
      peerInfoMapper: (opts.allowPrivateAddresses ?? true) ? passthroughMapper : removePrivateAddressesMapper,
      validators: { [DHT_NAMESPACE]: async (key, value) => { await verifyRecord(key, value) } },
      selectors: { [DHT_NAMESPACE]: selectRecord },
      // Our records and provider announcements are re-published by their owners; no need to query an empty table forever.
      initialQuerySelfInterval: 500,
      // A new contact is pinged before it enters the routing table; libp2p's 5 s floor drops the bootstrap node
      // when a loaded machine answers late, and nothing would offer it again (NetworkHealth also repairs that).
      pingNewContactTimeout: { minTimeout: 15_000 }
    }),
    pubsub: gossipsub({
      // Meshes and publishes over relayed connections too: the round announcements and matchmaking of a peer
      // behind NAT travel on them.
      runOnLimitedConnection: true,
      globalSignaturePolicy: 'StrictSign',
      allowPublishToZeroTopicPeers: true,
      emitSelf: false,
      maxInboundDataLength: MAX_GOSSIP_FRAME_BYTES,
      scoreParams: peerScoreParams({ ipColocationThreshold: opts.ipColocationThreshold ?? 10 }),
      scoreThresholds: { gossipThreshold: -10, publishThreshold: -50, graylistThreshold: -80, acceptPXThreshold: 10, opportunisticGraftThreshold: 20 }
    })
  }
  if (opts.relayServer != null) {
    services.relay = circuitRelayServer(relayServerInit(opts.relayServer))
  }
  // Every node can dial through relays; only relay clients also reserve a slot to be reachable through one.
  const transports: any[] = [tcp(), circuitRelayTransport()]
  const listen = [...opts.listen]
  if (opts.relayClient && !listen.includes('/p2p-circuit')) listen.push('/p2p-circuit')
  return {
    privateKey: opts.privateKey,
    nodeInfo: { name: AGENT_NAME, userAgent: opts.agentVersion ?? `${AGENT_NAME}/0.1.0` },
    addresses: { listen, announce: opts.announce ?? [] },
    transports,
    // Native TLS (OpenSSL on the TCP socket) first; Noise for peers without it. Relayed connections run the same
    // TLS protocol over the relay stream (node/network/native-tls.ts).
    connectionEncrypters: [nativeTls(), noise()],
    // Yamux defaults: a larger initial stream window bought nothing measurable (benchmarks/README.md "transport"),
    // and js-yamux assumes the remote's initial window equals its own, so raising it breaks peers left at 256 KiB.
    streamMuxers: [yamux()],
    peerDiscovery: (opts.bootstrap?.length ?? 0) > 0 ? [bootstrap({ list: opts.bootstrap ?? [], timeout: 0 })] : [],
    connectionManager: { maxConnections: opts.maxConnections, inboundConnectionThreshold: opts.inboundConnectionsPerSecond ?? 25 },
    // A peer busy training (TensorFlow.js holds its event loop for whole steps) answers pings late; aborting the
    // connection for that tore down all-reduces between live peers. Dead peers are still noticed: their TCP
    // connection closes, and the all-reduce has its own progress-based timeouts.
    connectionMonitor: { abortConnectionOnPingFailure: false },
    connectionGater: opts.connectionGater,
    services
  } as Libp2pOptions<Record<string, unknown>>
}
