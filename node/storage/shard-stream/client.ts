/**
 * The fetcher's side of `/nearai/shard/1.0.0`: one request to one holder. Every block that comes back is
 * checked before it is stored: it must be one that was asked for, or be linked from a block of this stream
 * already accepted (so a holder cannot push unrequested blocks), arrive once, be at most MAX_BLOCK_BYTES,
 * and hash to its CID (SHA-256, the multihash UnixFS uses). The first violation ends the stream with a
 * ShardStreamError; blocks accepted before it stay (each was verified on its own).
 */
import { createHash } from 'node:crypto'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import {
  BLOCK_HEADER_BYTES, checkLength, decodeBlockCid, encodeShardRequest, FRAME_BLOCK, FRAME_END, FRAME_ERROR,
  MAX_ERROR_BYTES, parseBlockHeader, parseShardError, SHA2_256_CODE, SHARD_STREAM_PROTOCOL, SHARD_STREAM_VERSION,
  type ShardErrorCode
} from '../../../protocol/shard-stream.ts'
import { InvalidMessageError } from '../../../protocol/errors.ts'
import { ByteReader, StreamEndedError } from './byte-reader.ts'
import { StallTimer } from '../../time/stall-timer.ts'
import { systemClock } from '../../time/clock.ts'
import type { LinkDecoder } from './links.ts'

/** Why a stream from a holder failed; `holderCode` is the holder's own error code when it sent one. */
export type ShardStreamFailure = 'unsupported' | 'dial' | 'refused' | 'unrequested-block' | 'bad-block' | 'protocol' | 'incomplete' | 'timeout'

export class ShardStreamError extends Error {
  override name = 'ShardStreamError'
  constructor (readonly failure: ShardStreamFailure, message: string, readonly holderCode?: ShardErrorCode, options?: { cause?: unknown }) {
    super(message, options)
  }
}

export interface StreamBlocksOptions {
  signal: AbortSignal
  /** Give up on the holder when no byte arrives for this long (default 10 s). */
  idleTimeoutMs?: number
  /** Time to open the stream (default 5 s). */
  dialTimeoutMs?: number
  links: LinkDecoder
  /** Stores a verified block. */
  put: (cid: CID, bytes: Uint8Array) => Promise<void>
  /** Called with every verified block's size. */
  onBlock?: (bytes: number) => void
}

export interface StreamBlocksResult { blocks: number, bytes: number }

/** Asks `peer` for `cids` (and everything below them when `recursive`) and stores what it sends, verified. */
export async function streamBlocks (libp2p: Pick<Libp2p, 'dialProtocol'>, peer: PeerId, cids: CID[], recursive: boolean, opts: StreamBlocksOptions): Promise<StreamBlocksResult> {
  const idleTimeoutMs = opts.idleTimeoutMs ?? 10_000
  let stream: Stream
  try {
    stream = await libp2p.dialProtocol(peer, SHARD_STREAM_PROTOCOL, {
      signal: AbortSignal.any([opts.signal, AbortSignal.timeout(opts.dialTimeoutMs ?? 5_000)]),
      // Bulk bytes stay off relayed connections (see server.ts); bitswap covers a relay-only holder.
      runOnLimitedConnection: false
    })
  } catch (err) {
    opts.signal.throwIfAborted()
    const unsupported = (err as Error).name === 'UnsupportedProtocolError'
    throw new ShardStreamError(unsupported ? 'unsupported' : 'dial', `cannot open a shard stream to ${peer.toString()}: ${(err as Error).message}`, undefined, { cause: err })
  }

  let timedOut = false
  const idle = new StallTimer(systemClock, idleTimeoutMs, () => { timedOut = true; stream.abort(new Error(`no data for ${idleTimeoutMs} ms`)) })
  const onAbort = (): void => { stream.abort(opts.signal.reason instanceof Error ? opts.signal.reason : new Error('aborted')) }
  opts.signal.addEventListener('abort', onAbort)
  try {
    const reader = new ByteReader(stream, () => { idle.touch() })
    stream.send(encodeShardRequest({ v: SHARD_STREAM_VERSION, cids: cids.map(String), recursive }))
    await stream.close({ signal: opts.signal })

    const expected = new Set(cids.map(String))
    const received = new Set<string>()
    let blocks = 0
    let bytes = 0
    for (;;) {
      const type = await reader.u8()
      if (type === FRAME_END) break
      if (type === FRAME_ERROR) {
        const length = checkLength(await reader.u32(), MAX_ERROR_BYTES, 'shard stream error')
        const error = parseShardError(await reader.read(length))
        throw new ShardStreamError('refused', `${peer.toString()} refused: ${error.message}`, error.code)
      }
      if (type !== FRAME_BLOCK) throw new InvalidMessageError(`shard stream: unknown frame type ${type}`)
      const head = await reader.read(BLOCK_HEADER_BYTES - 1)
      const { cidLength, dataLength } = parseBlockHeader(Uint8Array.of(type, ...head))
      const cid = decodeBlockCid(await reader.read(cidLength))
      const key = cid.toString()
      if (!expected.has(key) || received.has(key)) {
        throw new ShardStreamError('unrequested-block', `${peer.toString()} sent block ${key}, which was not asked for${received.has(key) ? ' again' : ''}`)
      }
      const data = await reader.read(dataLength)
      verifyBlock(cid, data, peer)
      received.add(key)
      await opts.put(cid, data)
      blocks++
      bytes += data.byteLength
      opts.onBlock?.(data.byteLength)
      if (recursive) for (const link of await opts.links(cid, data)) expected.add(link.toString())
    }
    if (received.size !== expected.size) {
      throw new ShardStreamError('incomplete', `${peer.toString()} ended the stream with ${expected.size - received.size} of the blocks asked for not sent`)
    }
    return { blocks, bytes }
  } catch (err) {
    stream.abort(err as Error)
    opts.signal.throwIfAborted()
    if (err instanceof ShardStreamError) throw err
    if (timedOut) throw new ShardStreamError('timeout', `${peer.toString()} sent nothing for ${idleTimeoutMs} ms`, undefined, { cause: err })
    if (err instanceof InvalidMessageError || err instanceof StreamEndedError) throw new ShardStreamError('protocol', `${peer.toString()}: ${(err as Error).message}`, undefined, { cause: err })
    throw new ShardStreamError('protocol', `shard stream from ${peer.toString()} failed: ${(err as Error).message}`, undefined, { cause: err })
  } finally {
    idle.clear()
    opts.signal.removeEventListener('abort', onAbort)
  }
}

/** The bytes must hash to the CID; only SHA-256 (what UnixFS imports use) is accepted here. */
function verifyBlock (cid: CID, data: Uint8Array, peer: PeerId): void {
  if (cid.multihash.code !== SHA2_256_CODE) {
    throw new ShardStreamError('bad-block', `${peer.toString()} sent block ${cid.toString()} hashed with multihash 0x${cid.multihash.code.toString(16)}; only SHA-256 is accepted on shard streams`)
  }
  const digest = createHash('sha256').update(data).digest()
  if (!digest.equals(cid.multihash.digest)) {
    throw new ShardStreamError('bad-block', `${peer.toString()} sent bytes for block ${cid.toString()} that do not hash to it`)
  }
}
