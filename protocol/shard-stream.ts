/**
 * The shard-stream protocol (`/nearai/shard/1.0.0`): a fetcher asks a holder for blocks of a UnixFS DAG
 * (a dataset shard) and the holder streams them back in one go, instead of bitswap's want/have/block
 * round trips. Pure: no sockets, no clocks. Nothing is trusted: the fetcher checks every block against its
 * CID and accepts only blocks it asked for or that are linked from blocks it already accepted.
 *
 * One stream per request, opened by the fetcher. Big-endian framing:
 *
 *     fetcher → holder   [u32 length][request: UTF-8 JSON], then half-close
 *     holder  → fetcher  block*  then end | error
 *
 *     block  [u8 1][u16 CID length][u32 data length][CID bytes][data]
 *     end    [u8 0]                                   every block asked for was sent
 *     error  [u8 2][u32 length][UTF-8 JSON { code, message }]
 *
 * A `recursive` request streams each requested CID's whole DAG, depth-first, parents before their
 * children, each distinct block once; otherwise only the requested blocks, in request order. A holder
 * serves only blocks it holds (it never fetches on a requester's behalf) and answers `not-found` for the
 * first one it lacks. Data lengths are at most {@link MAX_BLOCK_BYTES} (bitswap's message cap).
 */
import { z } from 'zod'
import { CID } from 'multiformats/cid'
import { decodeJson, encodeJson } from './codec.ts'
import { InvalidMessageError } from './errors.ts'
import { SHARD_STREAM_PROTOCOL } from './ids.ts'

export { SHARD_STREAM_PROTOCOL }

export const SHARD_STREAM_VERSION = 1
/** Bitswap's message cap: no block a bitswap peer would accept is larger. */
export const MAX_BLOCK_BYTES = 2 * 1024 * 1024
export const MAX_REQUEST_CIDS = 1024
export const MAX_REQUEST_BYTES = 128 * 1024
export const MAX_CID_BYTES = 128
export const MAX_ERROR_BYTES = 4 * 1024

export const FRAME_END = 0
export const FRAME_BLOCK = 1
export const FRAME_ERROR = 2
/** type + CID length + data length */
export const BLOCK_HEADER_BYTES = 1 + 2 + 4

/** Only UnixFS DAGs travel on this protocol: dag-pb nodes and raw leaves. */
export const DAG_PB_CODE = 0x70
export const RAW_CODE = 0x55
export const SHA2_256_CODE = 0x12

const CidString = z.string().min(1).max(2 * MAX_CID_BYTES).refine(s => {
  try {
    const cid = CID.parse(s)
    return cid.code === DAG_PB_CODE || cid.code === RAW_CODE
  } catch {
    return false
  }
}, 'not a CID of a UnixFS block (dag-pb or raw)')

export const ShardRequest = z.object({
  v: z.literal(SHARD_STREAM_VERSION),
  cids: z.array(CidString).min(1).max(MAX_REQUEST_CIDS),
  recursive: z.boolean()
}).strict()
export type ShardRequest = z.infer<typeof ShardRequest>

export const SHARD_ERROR_CODES = ['malformed-request', 'not-found', 'busy', 'too-large', 'internal'] as const
export type ShardErrorCode = typeof SHARD_ERROR_CODES[number]

export const ShardErrorMessage = z.object({
  code: z.enum(SHARD_ERROR_CODES),
  message: z.string().max(1024)
}).strict()
export type ShardErrorMessage = z.infer<typeof ShardErrorMessage>

export function encodeShardRequest (request: ShardRequest): Uint8Array {
  const body = encodeJson(request)
  if (body.byteLength > MAX_REQUEST_BYTES) throw new InvalidMessageError(`shard request of ${body.byteLength} bytes exceeds ${MAX_REQUEST_BYTES}`)
  return withLength(body)
}

/** Parses a request's JSON body (its length already checked against MAX_REQUEST_BYTES). */
export function parseShardRequest (body: Uint8Array): { request: ShardRequest, cids: CID[] } {
  const request = decodeJson(ShardRequest, body, MAX_REQUEST_BYTES, 'shard request')
  return { request, cids: request.cids.map(c => CID.parse(c)) }
}

/** The header of one block frame (the CID and data bytes follow). */
export function encodeBlockHeader (cid: CID, dataLength: number): Uint8Array {
  const cidBytes = cid.bytes
  const out = new Uint8Array(BLOCK_HEADER_BYTES + cidBytes.byteLength)
  const view = new DataView(out.buffer)
  view.setUint8(0, FRAME_BLOCK)
  view.setUint16(1, cidBytes.byteLength)
  view.setUint32(3, dataLength)
  out.set(cidBytes, BLOCK_HEADER_BYTES)
  return out
}

/** Lengths of a block frame, checked against the protocol's bounds before any of it is read. */
export function parseBlockHeader (header: Uint8Array): { cidLength: number, dataLength: number } {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength)
  const cidLength = view.getUint16(1)
  const dataLength = view.getUint32(3)
  if (cidLength === 0 || cidLength > MAX_CID_BYTES) throw new InvalidMessageError(`shard stream: a block's CID of ${cidLength} bytes (at most ${MAX_CID_BYTES})`)
  if (dataLength > MAX_BLOCK_BYTES) throw new InvalidMessageError(`shard stream: a block of ${dataLength} bytes exceeds ${MAX_BLOCK_BYTES}`)
  return { cidLength, dataLength }
}

export function decodeBlockCid (bytes: Uint8Array): CID {
  try {
    return CID.decode(bytes)
  } catch (err) {
    throw new InvalidMessageError(`shard stream: a block's CID does not decode (${(err as Error).message})`)
  }
}

export function encodeEnd (): Uint8Array {
  return Uint8Array.of(FRAME_END)
}

export function encodeShardError (code: ShardErrorCode, message: string): Uint8Array {
  const body = encodeJson({ code, message: message.slice(0, 1024) })
  const out = new Uint8Array(1 + 4 + body.byteLength)
  out[0] = FRAME_ERROR
  new DataView(out.buffer).setUint32(1, body.byteLength)
  out.set(body, 5)
  return out
}

export function parseShardError (body: Uint8Array): ShardErrorMessage {
  return decodeJson(ShardErrorMessage, body, MAX_ERROR_BYTES, 'shard stream error')
}

export function checkLength (length: number, max: number, what: string): number {
  if (length > max) throw new InvalidMessageError(`${what}: ${length} bytes exceeds the limit of ${max}`)
  return length
}

function withLength (body: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + body.byteLength)
  new DataView(out.buffer).setUint32(0, body.byteLength)
  out.set(body, 4)
  return out
}
