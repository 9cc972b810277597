/**
 * The holder's side of `/nearai/shard/1.0.0`: reads one request, then streams the blocks it names (and,
 * when recursive, every block below them, depth-first, each once) from this node's blockstore. It serves
 * only what it holds, never fetching on a requester's behalf, and answers with an error frame
 * (`malformed-request`, `not-found`, `busy`, `too-large`) instead of bytes it should not send.
 *
 * Relayed (limited) connections: the handler does not run on them (`runOnLimitedConnection: false`). A
 * relay caps the bytes and time of such a connection, and a shard stream would spend it at once on bulk
 * bytes, closing it for gossip and the all-reduce. A fetcher behind a relay only falls back to bitswap,
 * which does run there, one block at a time.
 */
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import type { Helia } from '@helia/interface'
import type { CID } from 'multiformats/cid'
import {
  encodeBlockHeader, encodeEnd, encodeShardError, MAX_BLOCK_BYTES, MAX_REQUEST_BYTES, parseShardRequest,
  SHARD_STREAM_PROTOCOL, type ShardErrorCode
} from '../../../protocol/shard-stream.ts'
import { InvalidMessageError } from '../../../protocol/errors.ts'
import { ByteReader, StreamEndedError } from './byte-reader.ts'
import { linkDecoder, type LinkDecoder } from './links.ts'

export interface ShardServerInit {
  /** Requests served at once by this node, over all peers; more are answered `busy` (default 64). */
  maxStreams?: number
  /** Inbound streams per connection (default 16: a fetcher reads a few shards at once, each on a few streams). */
  maxStreamsPerConnection?: number
  /** Time a requester has to send its request (default 10 s). */
  requestTimeoutMs?: number
  /** Time a requester may leave the stream without reading before it is given up on (default 30 s). */
  stallTimeoutMs?: number
}

export interface ShardServer {
  /** Requests being served now. */
  readonly active: number
  /** Blocks and bytes sent since the start. */
  readonly served: { blocks: number, bytes: number }
  stop: () => Promise<void>
}

class ShardRefusal extends Error {
  constructor (readonly code: ShardErrorCode, message: string) { super(message) }
}

/** Registers the handler on `libp2p`; `stop` unregisters it. */
export async function startShardServer (helia: Pick<Helia, 'blockstore' | 'getCodec'>, libp2p: Pick<Libp2p, 'handle' | 'unhandle'>, init: ShardServerInit = {}): Promise<ShardServer> {
  const maxStreams = init.maxStreams ?? 64
  const requestTimeoutMs = init.requestTimeoutMs ?? 10_000
  const stallTimeoutMs = init.stallTimeoutMs ?? 30_000
  const links = linkDecoder(helia)
  const server = { active: 0, served: { blocks: 0, bytes: 0 }, stop: async () => { await libp2p.unhandle(SHARD_STREAM_PROTOCOL) } }
  const handler = (stream: Stream, _connection: Connection): void => {
    if (server.active >= maxStreams) {
      void refuse(stream, 'busy', `serving ${server.active} shard streams already; try again later`)
      return
    }
    server.active++
    void serve(helia, links, stream, { requestTimeoutMs, stallTimeoutMs, served: server.served }).finally(() => { server.active-- })
  }
  await libp2p.handle(SHARD_STREAM_PROTOCOL, handler, {
    maxInboundStreams: init.maxStreamsPerConnection ?? 16,
    runOnLimitedConnection: false
  })
  return server
}

async function serve (helia: Pick<Helia, 'blockstore'>, links: LinkDecoder, stream: Stream, opts: { requestTimeoutMs: number, stallTimeoutMs: number, served: { blocks: number, bytes: number } }): Promise<void> {
  const controller = new AbortController()
  const onClose = (): void => { controller.abort(new Error('stream closed')) }
  stream.addEventListener('close', onClose)
  const signal = controller.signal
  try {
    const reader = new ByteReader(stream)
    const requestTimer = setTimeout(() => { stream.abort(new Error(`no request within ${opts.requestTimeoutMs} ms`)) }, opts.requestTimeoutMs)
    let cids: CID[], recursive: boolean
    try {
      const length = await reader.u32()
      if (length > MAX_REQUEST_BYTES) throw new ShardRefusal('malformed-request', `a request of ${length} bytes exceeds ${MAX_REQUEST_BYTES}`)
      const parsed = parseShardRequest(await reader.read(length))
      cids = parsed.cids
      recursive = parsed.request.recursive
    } catch (err) {
      if (err instanceof ShardRefusal) throw err
      if (err instanceof InvalidMessageError) throw new ShardRefusal('malformed-request', err.message)
      // The requester closed its side before the request was whole: its request is malformed, nothing failed here.
      if (err instanceof StreamEndedError) throw new ShardRefusal('malformed-request', `truncated request: ${err.message}`)
      throw err
    } finally {
      clearTimeout(requestTimer)
    }

    // Depth-first, parents before children, children in link order: what a file's reader needs first.
    const stack = [...cids].reverse()
    const sent = new Set<string>()
    while (stack.length > 0) {
      const cid = stack.pop() as CID
      const key = cid.toString()
      if (sent.has(key)) continue
      sent.add(key)
      const bytes = await localBlock(helia, cid, signal)
      await send(stream, encodeBlockHeader(cid, bytes.byteLength), signal, opts.stallTimeoutMs)
      await send(stream, bytes, signal, opts.stallTimeoutMs)
      opts.served.blocks++
      opts.served.bytes += bytes.byteLength
      if (recursive) {
        const children = await links(cid, bytes)
        for (let i = children.length - 1; i >= 0; i--) stack.push(children[i])
      }
    }
    await send(stream, encodeEnd(), signal, opts.stallTimeoutMs)
    await stream.close({ signal: AbortSignal.timeout(opts.stallTimeoutMs) })
  } catch (err) {
    if (err instanceof ShardRefusal) {
      await refuse(stream, err.code, err.message)
    } else if (!signal.aborted) {
      await refuse(stream, 'internal', (err as Error).message)
    } else {
      stream.abort(err as Error)
    }
  } finally {
    stream.removeEventListener('close', onClose)
  }
}

/** A block this node holds; never asks the network for one. */
async function localBlock (helia: Pick<Helia, 'blockstore'>, cid: CID, signal: AbortSignal): Promise<Uint8Array> {
  if (!await helia.blockstore.has(cid, { signal })) throw new ShardRefusal('not-found', `block ${cid.toString()} is not held here`)
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of helia.blockstore.get(cid, { signal, offline: true })) {
    size += chunk.byteLength
    if (size > MAX_BLOCK_BYTES) throw new ShardRefusal('too-large', `block ${cid.toString()} exceeds ${MAX_BLOCK_BYTES} bytes`)
    chunks.push(chunk)
  }
  if (chunks.length === 1) return chunks[0]
  return Buffer.concat(chunks, size)
}

async function send (stream: Stream, bytes: Uint8Array, signal: AbortSignal, stallTimeoutMs: number): Promise<void> {
  signal.throwIfAborted()
  if (!stream.send(bytes)) await stream.onDrain({ signal: AbortSignal.any([signal, AbortSignal.timeout(stallTimeoutMs)]) })
}

async function refuse (stream: Stream, code: ShardErrorCode, message: string): Promise<void> {
  try {
    stream.send(encodeShardError(code, message))
    await stream.close({ signal: AbortSignal.timeout(5_000) })
  } catch (err) {
    stream.abort(err as Error)
  }
}
