/**
 * The receiving end of the benchmarks' raw TCP baseline (node:net, no libp2p): a copy starts with its length
 * (float64, big-endian), and the sink answers one byte once it has all of it, so the sender times the copy
 * up to the last byte received.
 */
import { createServer, type Server, type Socket } from 'node:net'

/** Listens on 127.0.0.1 (a free port); `onSocket` sees every accepted socket (e.g. to leave it out of byte counts). */
export async function rawTcpSink (onSocket?: (socket: Socket) => void): Promise<Server> {
  const server = createServer(socket => {
    onSocket?.(socket)
    let expected = -1
    let got = 0
    socket.on('data', (bytes: Buffer) => {
      if (expected < 0) expected = bytes.readDoubleBE(0)
      got += bytes.byteLength
      if (got >= expected + 8) socket.end(Buffer.from([1]))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return server
}
