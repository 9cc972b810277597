/**
 * Native TLS connection encrypter: the libp2p TLS 1.3 handshake (spec https://github.com/libp2p/specs/blob/master/tls/tls.md,
 * protocol id /tls/1.0.0) run by node:tls directly on the TCP connection's net.Socket, so OpenSSL's AES-GCM
 * encrypts in native code on the socket's own handle. Noise (ChaCha20-Poly1305 in JS) and @libp2p/tls (node:tls
 * over a JS duplex) both spend most of a bulk transfer in JS; see benchmarks/README.md "transport".
 *
 * The peer's identity is proven by a self-signed certificate carrying the libp2p public key extension
 * (tls-certificate.ts); a dial checks it against the peer id dialled and refuses another with UnexpectedPeerError.
 * The stream muxer is agreed inside the handshake by ALPN (the muxer ids, then "libp2p"), as the spec's early
 * muxer negotiation does, saving a round trip.
 *
 * A connection with no raw socket (a relayed /p2p-circuit connection, or one whose handshake bytes were already
 * read into JS) runs the same protocol through @libp2p/tls, which wraps the libp2p connection in a JS duplex: the
 * wire is the same, only slower. Offer it before Noise (`connectionEncrypters: [nativeTls(), noise()]`): a peer
 * with only Noise answers "na" to /tls/1.0.0 and the two settle on Noise.
 */
import net from 'node:net'
import { TLSSocket, connect as tlsConnect } from 'node:tls'
import type { ConnectionOptions, TlsOptions } from 'node:tls'
import { tls } from '@libp2p/tls'
import { TimeoutError, serviceCapabilities } from '@libp2p/interface'
import type {
  AbortOptions, ComponentLogger, ConnectionEncrypter, Logger, MessageStream, Metrics, PrivateKey, SecureConnectionOptions,
  SecuredConnection, StreamMuxerFactory, Upgrader
} from '@libp2p/interface'
import { generateTlsCertificate, verifyTlsCertificate, type TlsCertificate } from './tls-certificate.ts'
import { TlsSocketStream } from './tls-socket-stream.ts'

export const NATIVE_TLS_PROTOCOL = '/tls/1.0.0'
/** The ALPN id the spec reserves for "libp2p, muxer negotiated afterwards by multistream-select". */
const ALPN_LIBP2P = 'libp2p'
const DEFAULT_INACTIVITY_TIMEOUT_MS = 2 * 60 * 1000

export interface NativeTlsComponents {
  privateKey: PrivateKey
  logger: ComponentLogger
  upgrader: Upgrader
  metrics?: Metrics
}

export interface NativeTlsInit {
  /**
   * TLS 1.3 cipher suites in order of preference (OpenSSL names, ':'-separated). Default: AES-128-GCM first (the
   * fastest with AES-NI), then AES-256-GCM and ChaCha20-Poly1305.
   */
  cipherSuites?: string
}

export const DEFAULT_TLS_CIPHER_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256'

/**
 * The transport's socket, when the connection is @libp2p/tcp's MultiaddrConnection holding a live net.Socket with
 * nothing of the remote's left unread in JS and nothing of ours left unsent; otherwise undefined.
 */
function takeableSocket (connection: MessageStream): net.Socket | undefined {
  const socket = (connection as { socket?: unknown }).socket
  if (!(socket instanceof net.Socket) || socket instanceof TLSSocket) return undefined
  if (socket.destroyed || (socket as unknown as { _handle?: unknown })._handle == null) return undefined
  if (typeof (connection as { sendClose?: unknown }).sendClose !== 'function') return undefined
  if (connection.readBufferLength > 0 || connection.writeBufferLength > 0 || socket.writableLength > 0) return undefined
  return socket
}

/** The MultiaddrConnections whose socket native TLS took over (the others went through @libp2p/tls). */
const takenOver = new WeakSet<object>()

/** Whether native TLS runs on this transport connection's own socket (a Connection's `maConn`). */
export function isSecuredNatively (maConn: object): boolean {
  return takenOver.has(maConn)
}

/** What native TLS changes on the MultiaddrConnection once TLS owns the socket's handle. */
interface TakenOverConnection {
  sendClose: (options?: AbortOptions) => Promise<void>
  sendReset: (err: Error) => void
  sendPause: () => void
  sendResume: () => void
}

class NativeTls implements ConnectionEncrypter {
  readonly protocol = NATIVE_TLS_PROTOCOL
  readonly [Symbol.toStringTag] = '@nearai/native-tls'
  readonly [serviceCapabilities]: string[] = ['@libp2p/connection-encryption']
  private readonly components: NativeTlsComponents
  private readonly log: Logger
  private readonly cipherSuites: string
  /** Same protocol over a JS duplex, for connections with no raw socket. */
  private readonly overStream: ConnectionEncrypter
  private certificate?: Promise<TlsCertificate>

  constructor (components: NativeTlsComponents, init: NativeTlsInit = {}) {
    this.components = components
    this.log = components.logger.forComponent('nearai:native-tls')
    this.cipherSuites = init.cipherSuites ?? DEFAULT_TLS_CIPHER_SUITES
    this.overStream = tls()(components)
    // Made ahead so that the first inbound handshake finds it ready (waiting on it could let the ClientHello be
    // read into JS, which sends that connection the slower way).
    this.getCertificate().catch((err) => { this.log.error('could not make the TLS certificate - %e', err) })
  }

  async secureInbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    return await this.secure(connection, true, options)
  }

  async secureOutbound (connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    return await this.secure(connection, false, options)
  }

  /** One certificate per node, made on first use (a fresh ECDSA key and a signature by the libp2p key). */
  private async getCertificate (options?: AbortOptions): Promise<TlsCertificate> {
    if (this.certificate == null) {
      this.certificate = generateTlsCertificate(this.components.privateKey)
      this.certificate.catch(() => { this.certificate = undefined })
    }
    const cert = await this.certificate
    options?.signal?.throwIfAborted()
    return cert
  }

  private async secure (connection: MessageStream, isServer: boolean, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    const cert = await this.getCertificate(options)
    // Synchronous from this check to wrapping the handle: no byte of the remote's handshake can reach JS between.
    const socket = takeableSocket(connection)
    if (socket == null) {
      connection.log('native-tls: no raw socket to take over, running TLS over the libp2p connection')
      return isServer
        ? await this.overStream.secureInbound(connection, options)
        : await this.overStream.secureOutbound(connection, options)
    }
    return await this.secureSocket(connection, socket, cert, isServer, options)
  }

  private async secureSocket (connection: MessageStream, socket: net.Socket, cert: TlsCertificate, isServer: boolean,
    options?: SecureConnectionOptions): Promise<SecuredConnection> {
    const log = connection.log.newScope('native-tls')
    const muxers = this.components.upgrader.getStreamMuxers()
    const offered = options?.skipStreamMuxerNegotiation === true ? [ALPN_LIBP2P] : [...muxers.keys(), ALPN_LIBP2P]
    let streamMuxer: StreamMuxerFactory | undefined
    const common: TlsOptions = {
      ...cert,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      ciphers: this.cipherSuites,
      // The certificate is self-signed by design; the libp2p extension is checked below instead of a CA chain.
      rejectUnauthorized: false,
      ALPNProtocols: offered
    }
    // The MultiaddrConnection's own inactivity timer would no longer see traffic: TLS's socket keeps one instead.
    socket.setTimeout(0)
    let tlsSocket: TLSSocket
    if (isServer) {
      tlsSocket = new TLSSocket(socket, {
        ...common,
        isServer: true,
        requestCert: true,
        ALPNCallback: ({ protocols }) => {
          for (const p of protocols) {
            if (p !== ALPN_LIBP2P && options?.skipStreamMuxerNegotiation !== true && muxers.has(p)) {
              streamMuxer = muxers.get(p)
              return p
            }
          }
          return protocols.includes(ALPN_LIBP2P) ? ALPN_LIBP2P : undefined
        }
      })
    } else {
      // No host and no servername: node:tls then sends no SNI, which the spec forbids a client to send.
      tlsSocket = tlsConnect({ ...common, socket } as ConnectionOptions)
    }
    // A socket error with no listener is an uncaught exception that ends the process. The handshake and
    // TlsSocketStream listen while they run, but an aborted dial tears the connection down after the handshake's
    // listener is gone and before any stream exists (seen killing DHT benchmark workers): keep one for the
    // socket's whole life; what to do about the error stays with the other listeners.
    tlsSocket.on('error', (err) => { log('TLS socket error - %e', err) })
    this.takeOver(connection, tlsSocket)

    const remotePeer = await new Promise<SecuredConnection['remotePeer']>((resolve, reject) => {
      const fail = (err: Error): void => {
        cleanup()
        log.error('native TLS handshake failed - %e', err)
        tlsSocket.destroy()
        connection.abort(err)
        reject(err)
      }
      const onAbort = (): void => { fail(options?.signal?.reason ?? new TimeoutError('TLS handshake aborted')) }
      const onError = (err: Error): void => { fail(err) }
      const onSecure = (): void => {
        const raw = tlsSocket.getPeerCertificate(false)?.raw
        if (raw == null) { fail(new Error('remote presented no certificate')); return }
        verifyTlsCertificate(raw, options?.remotePeer).then((peer) => { cleanup(); resolve(peer) }, fail)
      }
      const cleanup = (): void => {
        options?.signal?.removeEventListener('abort', onAbort)
        tlsSocket.off('error', onError)
        tlsSocket.off('secure', onSecure)
      }
      if (options?.signal?.aborted === true) { onAbort(); return }
      options?.signal?.addEventListener('abort', onAbort, { once: true })
      tlsSocket.on('error', onError)
      tlsSocket.once('secure', onSecure)
    })

    if (!isServer) {
      const alpn = tlsSocket.alpnProtocol
      if (typeof alpn === 'string' && alpn !== ALPN_LIBP2P && options?.skipStreamMuxerNegotiation !== true) {
        streamMuxer = muxers.get(alpn)
        if (streamMuxer == null) {
          const err = new Error(`remote chose stream muxer ${alpn}, which this node did not offer`)
          connection.abort(err)
          throw err
        }
      }
    }
    log('secured %s connection to %p, muxer %s', connection.direction, remotePeer, streamMuxer?.protocol ?? 'by multistream-select')
    return { remotePeer, connection: new TlsSocketStream(connection, tlsSocket), streamMuxer }
  }

  /**
   * The MultiaddrConnection keeps the TCP socket's events (close, end, error) and stays what libp2p closes, but
   * TLS now owns the handle: closing must end TLS (flush, close_notify, FIN) rather than the bare socket, pausing
   * must pause TLS, a reset must destroy TLS (not reset the handle under it), and idleness is timed on TLS's socket.
   */
  private takeOver (connection: MessageStream, tlsSocket: TLSSocket): void {
    const conn = connection as unknown as TakenOverConnection
    takenOver.add(connection)
    conn.sendClose = async (options?: AbortOptions) => {
      if (tlsSocket.destroyed) return
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => { tlsSocket.destroy(); reject(options?.signal?.reason ?? new TimeoutError('TLS close aborted')) }
        options?.signal?.addEventListener('abort', onAbort, { once: true })
        tlsSocket.once('close', () => { options?.signal?.removeEventListener('abort', onAbort); resolve() })
        tlsSocket.end()
      })
    }
    // Never reset the TCP handle under TLS: with @libp2p/tcp's net.Socket.resetAndDestroy() there, an inbound
    // connection refused by the gater after the handshake killed Node with SIGSEGV (native-tls.test.ts keeps that
    // case). Destroying the TLS socket closes the handle; the socket's 'close' reaches the MultiaddrConnection.
    conn.sendReset = () => { tlsSocket.destroy() }
    conn.sendPause = () => { tlsSocket.pause() }
    conn.sendResume = () => { tlsSocket.resume() }
    const inactivity = connection.inactivityTimeout > 0 ? connection.inactivityTimeout : DEFAULT_INACTIVITY_TIMEOUT_MS
    tlsSocket.setTimeout(inactivity)
    tlsSocket.once('timeout', () => {
      this.log('TLS connection idle for %d ms, closing', inactivity)
      connection.abort(new TimeoutError('connection idle'))
    })
  }
}

/** libp2p connection encrypter factory: `connectionEncrypters: [nativeTls(), noise()]`. */
export function nativeTls (init: NativeTlsInit = {}): (components: NativeTlsComponents) => ConnectionEncrypter {
  return (components) => new NativeTls(components, init)
}
