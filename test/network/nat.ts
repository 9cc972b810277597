/**
 * A peer behind NAT on 127.0.0.1: it listens on no address of its own (only `/p2p-circuit` through the bootstrap
 * node's relay), and a connection gater plays its NAT and firewall: the only direct connection it may make is the
 * one to the bootstrap node; every other peer it reaches, and every peer that reaches it, goes through the relay.
 */
import type { Connection, ConnectionGater, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerNode } from '../../node/network/peer-node.ts'
import { startTestNode } from '../helpers/network.ts'

const relayed = (ma: Multiaddr): boolean => ma.toString().includes('/p2p-circuit')

/** Refuses every direct connection except to or from `bootstrapPeerId`. */
export function natGater (bootstrapPeerId: string): ConnectionGater {
  const direct = (peer: PeerId, addr: Multiaddr): boolean => !relayed(addr) && peer.toString() !== bootstrapPeerId
  return {
    denyDialMultiaddr: (ma) => !relayed(ma) && !ma.toString().includes(`/p2p/${bootstrapPeerId}`),
    denyInboundEncryptedConnection: (peer, conn) => direct(peer, conn.remoteAddr),
    denyOutboundEncryptedConnection: (peer, conn) => direct(peer, conn.remoteAddr)
  }
}

/** Starts a peer behind NAT whose only way in is a reservation on the relay at `bootstrapAddr`. */
export async function startNattedPeer (bootstrapAddr: string, bootstrapPeerId: string): Promise<PeerNode> {
  return await startTestNode('peer', {
    listen: [],
    relayClient: true,
    // Others cannot dial it, so it stays a DHT client (as the README tells such a peer to).
    dhtServer: false,
    bootstrap: [bootstrapAddr],
    connectionGater: natGater(bootstrapPeerId)
  })
}

export interface StreamRecord {
  from: string
  to: string
  protocol: string
  /** The connection the stream was opened on was limited (a relayed connection). */
  limited: boolean
  remoteAddr: string
}

/**
 * Records every stream `node` opens with `dialProtocol` (the all-reduce and bitswap open theirs so) and the
 * connection it ran on. It wraps the node's production `dialProtocol` and changes nothing of what it does.
 */
export function recordStreams (node: PeerNode, into: StreamRecord[]): void {
  const libp2p = node.libp2p
  const dialProtocol = libp2p.dialProtocol.bind(libp2p)
  libp2p.dialProtocol = async (peer, protocols, options): Promise<Stream> => {
    const stream = await dialProtocol(peer, protocols, options)
    const conn: Connection | undefined = libp2p.getConnections().find(c => c.streams.includes(stream))
    into.push({
      from: node.peerId,
      to: conn?.remotePeer.toString() ?? String(peer),
      protocol: stream.protocol ?? '',
      limited: conn?.limits != null,
      remoteAddr: conn?.remoteAddr.toString() ?? 'unknown: stream not found on any connection'
    })
    return stream
  }
}
