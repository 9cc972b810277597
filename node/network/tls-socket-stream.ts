/**
 * The secured connection native TLS hands to the stream muxer: a libp2p MessageStream over a node:tls TLSSocket
 * that sits directly on the TCP handle (OpenSSL encrypts and decrypts in native code, no JS duplex in between).
 * Closing, resetting and the close events stay with the transport's MultiaddrConnection, which libp2p's
 * Connection watches.
 */
import { AbstractMessageStream } from '@libp2p/utils'
import type { SendResult } from '@libp2p/utils'
import type { AbortOptions, MessageStream } from '@libp2p/interface'
import type { TLSSocket } from 'node:tls'

/** The Uint8ArrayList of @libp2p/utils' own version. */
type SendList = Parameters<AbstractMessageStream['sendData']>[0]

export class TlsSocketStream extends AbstractMessageStream {
  private readonly transport: MessageStream
  private readonly socket: TLSSocket

  constructor (transport: MessageStream, socket: TLSSocket) {
    super({
      log: transport.log.newScope('native-tls'),
      inactivityTimeout: transport.inactivityTimeout,
      maxReadBufferLength: transport.maxReadBufferLength,
      direction: transport.direction
    })
    this.transport = transport
    this.socket = socket
    socket.on('data', (buf: Buffer) => { this.onData(buf) })
    socket.on('drain', () => { this.safeDispatchEvent('drain') })
    socket.on('error', (err) => { transport.abort(err) })
    transport.addEventListener('close', (evt) => {
      socket.destroy()
      if (evt.error != null) {
        if (evt.local) this.abort(evt.error)
        else this.onRemoteReset()
      } else {
        this.onTransportClosed()
      }
    })
  }

  sendData (data: SendList): SendResult {
    // One corked batch: node:tls then packs the muxer's header and body writes into as few TLS records as it can.
    let sentBytes = 0
    let canSendMore = true
    this.socket.cork()
    for (const buf of data) {
      sentBytes += buf.byteLength
      canSendMore = this.socket.write(buf)
      if (!canSendMore) break
    }
    this.socket.uncork()
    return { sentBytes, canSendMore }
  }

  sendReset (err: Error): void {
    this.transport.abort(err)
  }

  sendPause (): void {
    this.socket.pause()
  }

  sendResume (): void {
    this.socket.resume()
  }

  async close (options?: AbortOptions): Promise<void> {
    await this.transport.close(options)
  }
}
