/**
 * Bounded fetching. Every read from the network here has a deadline, a byte ceiling and, where a manifest
 * gives one, a SHA-256 to meet; failures become named errors that carry the CID. Helia itself rejects any
 * block whose bytes do not hash to its CID (see `getCidBlockVerifierFunction` in helia's storage), so a
 * peer serving wrong bytes can only delay us until the deadline, never poison what we return or store.
 */
import { createHash } from 'node:crypto'
import * as buffer from 'node:buffer'
import { unixfs } from '@helia/unixfs'
import type { Helia } from '@helia/interface'
import type { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { ContentNotFoundError, ContentTooLargeError, FetchTimeoutError, HashMismatchError, InvalidContentError } from './errors.ts'
import { describeBytes } from './limits.ts'

export const DEFAULT_FETCH_TIMEOUT_MS = 60_000
/** The most one verified read holds in memory (Node's largest buffer is larger; nothing we read needs more). */
export const MAX_IN_MEMORY_BYTES = Math.min(buffer.constants.MAX_LENGTH, 4 * 1024 * 1024 * 1024)

export interface FetchBytesProgress { cid: CID, received: number, total: number }
export type FetchProgressEvents = ProgressEvent<'nearai:storage:fetch:bytes', FetchBytesProgress>

export interface BoundedFetchOptions {
  signal?: AbortSignal
  /** Deadline for the whole operation (default 60 s). */
  timeoutMs?: number
  /** Fail instead of asking the network when a block is missing locally. */
  offline?: boolean
}

export interface FetchOptions extends BoundedFetchOptions, ProgressOptions<FetchProgressEvents> {}

/** Progress of one fetch: whether any byte of the content arrived decides which error a timeout becomes. */
export interface FetchState { received: number }

/**
 * Helia's errors for content no peer could deliver (no provider found, every provider failed, nobody to
 * ask). Matched by name, here at the edge only: several copies of `@helia/interface` and `@helia/utils`
 * are installed, so `instanceof` against Helia's classes cannot be trusted; callers get our typed errors.
 */
const HELIA_UNAVAILABLE = new Set(['LoadBlockFailedError', 'InsufficientProvidersError', 'NoRoutersAvailableError'])

function heliaUnavailable (err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (HELIA_UNAVAILABLE.has(e.name)) return true
    if (e instanceof AggregateError && e.errors.some(heliaUnavailable)) return true
  }
  return false
}

/**
 * Runs `fn` under the caller's signal plus a deadline, and turns the ways a read from the network fails into
 * named errors: ContentNotFoundError when nothing arrived (no provider found, none answered, or Helia gave
 * up on every provider), FetchTimeoutError when the transfer started but did not finish in time. A caller's
 * own abort is passed through unchanged.
 */
export async function withDeadline<T> (cid: CID, opts: BoundedFetchOptions, fn: (signal: AbortSignal, state: FetchState) => Promise<T>): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS
  const deadline = new AbortController()
  const timer = setTimeout(() => { deadline.abort(new Error(`deadline of ${timeoutMs} ms passed`)) }, timeoutMs)
  const signal = opts.signal != null ? AbortSignal.any([opts.signal, deadline.signal]) : deadline.signal
  const state: FetchState = { received: 0 }
  try {
    return await fn(signal, state)
  } catch (err) {
    if (deadline.signal.aborted && opts.signal?.aborted !== true) {
      if (state.received === 0) {
        throw new ContentNotFoundError(cid, `no provider delivered ${cid.toString()} within ${timeoutMs} ms`, { cause: err })
      }
      throw new FetchTimeoutError(cid, `fetching ${cid.toString()} timed out after ${timeoutMs} ms (${state.received} bytes received)`, { cause: err })
    }
    if (opts.signal?.aborted !== true && heliaUnavailable(err)) {
      throw new ContentNotFoundError(cid, `no peer could deliver ${cid.toString()} (${state.received} bytes received): ${(err as Error).message}`, { cause: err })
    }
    throw err
  } finally {
    clearTimeout(timer)
  }
}

/** One whole block (a manifest, a directory node), refused when larger than `maxBytes`. */
export async function fetchBlock (helia: Helia, cid: CID, maxBytes: number, signal: AbortSignal, offline = false): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of helia.blockstore.get(cid, { signal, offline })) {
    size += chunk.byteLength
    if (size > maxBytes) throw new ContentTooLargeError(cid, `block ${cid.toString()} exceeds ${maxBytes} bytes`, maxBytes)
    chunks.push(chunk)
  }
  return concat(chunks, size)
}

export type BlockSource = Parameters<typeof unixfs>[0]['blockstore']

/**
 * A bitswap session rooted at `root` for content the DHT knows providers of (published datasets and
 * checkpoints are provided): one provider lookup for the whole DAG instead of one per block, which on
 * loopback fetches several times faster. Offline reads need none.
 */
export function sessionFor (helia: Helia, root: CID, signal: AbortSignal, offline?: boolean): BlockSource | undefined {
  if (offline === true) return undefined
  return helia.blockstore.createSession(root, { signal })
}

export interface VerifiedReadOptions {
  signal: AbortSignal
  state: FetchState
  /** Exact size the manifest declares; reading more is ContentTooLargeError, less is InvalidContentError. */
  bytes: number
  /** Expected SHA-256, lowercase hex. */
  sha256?: string
  /** Folder entry to read when `cid` is a directory. */
  path?: string
  offline?: boolean
  /** What the bytes are, for error messages ("shard 5 of dataset bafy..."). */
  what: string
  /** The CID an error should name (the dataset or checkpoint), when it is not `cid` itself. */
  errorCid?: CID
  onProgress?: (evt: FetchProgressEvents) => void
  /**
   * Where to read blocks: a session (`sessionFor`) finds the root's providers once and asks only them;
   * Helia's own blockstore (the default) runs a provider lookup for every missing block.
   */
  blockstore?: BlockSource
  /** Verify only: stream the bytes through the checks without keeping them (pinning large content). */
  discard?: boolean
}

/** Reads a UnixFS file fully, checking size as it streams and SHA-256 at the end. */
export async function readVerifiedFile (helia: Helia, cid: CID, opts: VerifiedReadOptions): Promise<Uint8Array> {
  const fs = opts.blockstore != null ? unixfs({ blockstore: opts.blockstore }) : unixfs(helia)
  const errorCid = opts.errorCid ?? cid
  // The size comes from a manifest: checked before it becomes an allocation (callers bound it further).
  if (!Number.isSafeInteger(opts.bytes) || opts.bytes < 0) throw new InvalidContentError(errorCid, `${opts.what} (${cid.toString()}): declared size ${opts.bytes} is not a byte count`)
  if (opts.discard !== true && opts.bytes > MAX_IN_MEMORY_BYTES) {
    throw new ContentTooLargeError(errorCid, `${opts.what} (${cid.toString()}): ${describeBytes(opts.bytes)} exceeds the limit of ${describeBytes(MAX_IN_MEMORY_BYTES)} one read may hold in memory`, MAX_IN_MEMORY_BYTES)
  }
  const hash = createHash('sha256')
  const out = new Uint8Array(opts.discard === true ? 0 : opts.bytes)
  let offset = 0
  for await (const chunk of fs.cat(cid, { signal: opts.signal, offline: opts.offline, path: opts.path })) {
    if (offset + chunk.byteLength > opts.bytes) {
      throw new ContentTooLargeError(errorCid, `${opts.what} (${cid.toString()}) is larger than the ${opts.bytes} bytes its manifest declares`, opts.bytes)
    }
    if (opts.discard !== true) out.set(chunk, offset)
    hash.update(chunk)
    offset += chunk.byteLength
    opts.state.received += chunk.byteLength
    opts.onProgress?.(new CustomProgressEvent('nearai:storage:fetch:bytes', { cid, received: offset, total: opts.bytes }))
  }
  if (offset !== opts.bytes) {
    throw new InvalidContentError(errorCid, `${opts.what} (${cid.toString()}) holds ${offset} bytes, its manifest declares ${opts.bytes}`)
  }
  if (opts.sha256 != null) {
    const actual = hash.digest('hex')
    if (actual !== opts.sha256) {
      throw new HashMismatchError(errorCid, `${opts.what} (${cid.toString()}) has SHA-256 ${actual}, its manifest says ${opts.sha256}`, opts.sha256, actual)
    }
  }
  return out
}

export function sha256Hex (bytes: Uint8Array | Uint8Array[]): string {
  const hash = createHash('sha256')
  for (const b of Array.isArray(bytes) ? bytes : [bytes]) hash.update(b)
  return hash.digest('hex')
}

export function concat (chunks: Uint8Array[], size = chunks.reduce((s, c) => s + c.byteLength, 0)): Uint8Array {
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(size)
  let offset = 0
  for (const c of chunks) { out.set(c, offset); offset += c.byteLength }
  return out
}

/** Reads a small UnixFS file of unknown size (a manifest), refusing more than `maxBytes`. */
export async function readSmallFile (helia: Helia, cid: CID, opts: { signal: AbortSignal, state: FetchState, maxBytes: number, path?: string, offline?: boolean, what: string, blockstore?: BlockSource }): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let size = 0
  const fs = opts.blockstore != null ? unixfs({ blockstore: opts.blockstore }) : unixfs(helia)
  for await (const chunk of fs.cat(cid, { signal: opts.signal, path: opts.path, offline: opts.offline })) {
    size += chunk.byteLength
    opts.state.received += chunk.byteLength
    if (size > opts.maxBytes) throw new ContentTooLargeError(cid, `${opts.what} in ${cid.toString()} exceeds ${opts.maxBytes} bytes`, opts.maxBytes)
    chunks.push(chunk)
  }
  return concat(chunks, size)
}

/**
 * The part of a fetch's deadline a provider session may use before the fetch falls back to asking every
 * connected peer: a session that found no reachable provider can otherwise wait out the whole deadline.
 */
export function sessionPhaseSignal (signal: AbortSignal, opts: BoundedFetchOptions): AbortSignal {
  const total = opts.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS
  return AbortSignal.any([signal, AbortSignal.timeout(Math.max(1000, Math.min(15_000, Math.floor(total / 3))))])
}
