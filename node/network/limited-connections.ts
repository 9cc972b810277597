/**
 * Limited (circuit relay) connections as a place to train over: the protocols a training peer needs open their
 * streams on a relayed connection when it is the only one to a peer, and a relayed connection that the relay
 * closes because its allowance is spent says so in the log instead of leaving a round to time out in silence.
 */
import { isPeerId, type Connection, type DialProtocolOptions, type Libp2p, type Stream } from '@libp2p/interface'
import type { Logger } from 'pino'

/**
 * libp2p 3.3 never reuses a limited connection when dialling a protocol by peer id, even with
 * `runOnLimitedConnection: true`: `findExistingConnection` skips limited connections, so the dial queue dials
 * the peer again. For a peer reachable only through a relay that is either a second relayed connection (a hop,
 * a Noise handshake, identify and DCUtR for every bitswap message, then dropped as a duplicate) or, when the
 * peer has no relay address of its own, a dial the connection gater or the NAT refuses, so the stream is never
 * opened although a working connection exists. This makes `dialProtocol` open the stream on the open limited
 * connection, the one with the most allowance left, when the caller accepts limited connections and no
 * unlimited connection exists (with one, libp2p's own path picks it). Upgrading a relayed connection to a
 * direct one is DCUtR's job, which runs on every relayed connection.
 */
export function reuseLimitedConnections (libp2p: Libp2p<any>): void {
  const dialProtocol = libp2p.dialProtocol.bind(libp2p)
  libp2p.dialProtocol = async (peer, protocols, options: DialProtocolOptions = {}): Promise<Stream> => {
    if (options.runOnLimitedConnection === true && isPeerId(peer)) {
      const open = libp2p.getConnections(peer).filter(c => c.status === 'open')
      const limited = open.every(c => c.limits != null) ? mostAllowanceLeft(open) : undefined
      if (limited != null) return await limited.newStream(protocols, options)
    }
    return await dialProtocol(peer, protocols, options)
  }
}

function mostAllowanceLeft (connections: Connection[]): Connection | undefined {
  const left = (c: Connection): bigint => c.limits?.bytes ?? BigInt(Number.MAX_SAFE_INTEGER)
  return [...connections].sort((a, b) => left(a) > left(b) ? -1 : left(a) < left(b) ? 1 : 0)[0]
}

/**
 * The relay closes a relayed connection once the bytes it has counted pass the limit, and may drop the frame that
 * passed it: the side that receives that frame has counted up to one frame (a Noise message, at most 64 KiB plus
 * its overhead) less than the relay did.
 */
const LAST_FRAME_BYTES = 65_535 + 1024

export interface RelayedConnectionClose {
  peer: string
  /** Bytes the connection carried (both directions, as the relay counts them), when the relay set a data limit. */
  bytesUsed?: number
  /** Bytes the relay still allowed when the connection closed. */
  bytesLeft?: number
  openSeconds: number
  /** The relay's data limit was used up (to within the frame that passed it): the relay closed the connection. */
  dataLimitReached: boolean
}

/**
 * Logs every relayed connection that closes: a warning naming the relay's data limit when that is what closed it
 * (the streams on it fail with a plain reset; this is the only place the reason is visible), debug otherwise.
 * Returns a function that stops watching.
 */
export function watchRelayedConnections (libp2p: Libp2p<any>, log: Logger, onClose?: (info: RelayedConnectionClose) => void): () => void {
  // The allowance a connection started with: its limits count down from there.
  const startBytes = new WeakMap<Connection, bigint>()
  const opened = (evt: CustomEvent<Connection>): void => {
    const bytes = evt.detail.limits?.bytes
    if (bytes != null) startBytes.set(evt.detail, bytes)
  }
  const closed = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    if (conn.limits == null) return
    const left = conn.limits.bytes
    const start = startBytes.get(conn)
    const info: RelayedConnectionClose = {
      peer: conn.remotePeer.toString(),
      bytesUsed: start != null && left != null ? Number(start - left) : undefined,
      bytesLeft: left != null ? Number(left) : undefined,
      openSeconds: Math.round((Date.now() - conn.timeline.open) / 1000),
      dataLimitReached: left != null && left <= BigInt(LAST_FRAME_BYTES)
    }
    if (info.dataLimitReached) {
      log.warn({ ...info, relayAddr: conn.remoteAddr.toString() }, 'the relay closed a relayed connection: its data limit was used up (streams on it fail; the peers dial again through the relay); the relay\'s operator sets it with bootstrap.relayDataLimitBytes')
    } else {
      log.debug({ ...info, relayAddr: conn.remoteAddr.toString() }, 'relayed connection closed')
    }
    onClose?.(info)
  }
  libp2p.addEventListener('connection:open', opened)
  libp2p.addEventListener('connection:close', closed)
  return () => {
    libp2p.removeEventListener('connection:open', opened)
    libp2p.removeEventListener('connection:close', closed)
  }
}
