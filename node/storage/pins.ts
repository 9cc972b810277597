/**
 * Pins keep content through garbage collection; provider records tell the DHT who serves it. Helia's
 * `pins.add` is an async generator that walks the DAG (fetching missing blocks one by one): drain it.
 * Helia does not announce on add, so everything published here is provided explicitly.
 */
import type { Helia } from '@helia/interface'
import type { CID } from 'multiformats/cid'
import { dagSize, walkDagBlocks } from './dag.ts'
import { withDeadline, type BoundedFetchOptions } from './fetch.ts'
import { NotPinnedError } from './errors.ts'

export type PinMetadata = Record<string, string | number | boolean>

export interface PinDagOptions {
  signal?: AbortSignal
  metadata?: PinMetadata
  /** Do not ask the network for missing blocks. */
  offline?: boolean
}

/**
 * Pins `cid` recursively (no-op when already pinned) and records the DAG's byte size in the pin's
 * metadata, so that pinnedBytes() need not read every block again.
 */
export async function pinDag (helia: Helia, cid: CID, opts: PinDagOptions = {}): Promise<{ bytes: number, alreadyPinned: boolean }> {
  if (await helia.pins.isPinned(cid, { signal: opts.signal })) {
    const pin = await helia.pins.get(cid, { signal: opts.signal })
    return { bytes: typeof pin.metadata.bytes === 'number' ? pin.metadata.bytes : await dagSize(helia, cid, { offline: true, signal: opts.signal }), alreadyPinned: true }
  }
  // Walk (and so fetch) the whole DAG here first: Helia's pinning walks it in background tasks whose
  // failures (a block nobody serves, a deadline) surface as unhandled rejections that crash the process.
  // Once every block is local, pinning offline cannot fail that way.
  for await (const _ of walkDagBlocks(helia, cid, { signal: opts.signal, offline: opts.offline })) { /* fetched */ }
  for await (const _ of helia.pins.add(cid, { signal: opts.signal, offline: true, metadata: opts.metadata } as any)) { /* drain */ }
  const bytes = await dagSize(helia, cid, { offline: true, signal: opts.signal })
  await helia.pins.setMetadata(cid, { ...(opts.metadata ?? {}), bytes }, { signal: opts.signal })
  return { bytes, alreadyPinned: false }
}

export interface ProvideResult { provided: CID[], failed: Array<{ cid: CID, error: Error }> }

/** Announces each CID on the DHT; failures (e.g. no DHT peers yet) are reported, not thrown. */
export async function provideAll (helia: Helia, cids: CID[], opts: { signal?: AbortSignal, concurrency?: number, onProvided?: (cid: CID) => void } = {}): Promise<ProvideResult> {
  const result: ProvideResult = { provided: [], failed: [] }
  const queue = [...cids]
  const worker = async (): Promise<void> => {
    for (let cid = queue.shift(); cid != null; cid = queue.shift()) {
      try {
        await helia.routing.provide(cid, { signal: opts.signal })
        result.provided.push(cid)
        opts.onProvided?.(cid)
      } catch (err) {
        opts.signal?.throwIfAborted()
        result.failed.push({ cid, error: err as Error })
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, cids.length) }, worker))
  return result
}

export interface PinAddOptions extends BoundedFetchOptions {
  metadata?: PinMetadata
}

/** `nearai pin add`: pins a DAG, fetching what is missing within the deadline. */
export async function pinAdd (helia: Helia, cid: CID, opts: PinAddOptions = {}): Promise<{ cid: CID, bytes: number, alreadyPinned: boolean }> {
  const r = await withDeadline(cid, opts, async (signal) => await pinDag(helia, cid, { signal, metadata: opts.metadata, offline: opts.offline }))
  return { cid, ...r }
}

/** `nearai pin rm`: unpins; the blocks go at the next garbage collection (`helia.gc()`). */
export async function pinRm (helia: Helia, cid: CID, opts: { signal?: AbortSignal } = {}): Promise<void> {
  if (!await isPinRoot(helia, cid, opts)) {
    const inside = await helia.pins.isPinned(cid, { signal: opts.signal })
    throw new NotPinnedError(cid, inside
      ? `${cid.toString()} is not pinned itself but is part of pinned content: unpin its root (\`nearai pin ls\` lists the roots)`
      : `${cid.toString()} is not pinned on this node (\`nearai pin ls\` lists the pins)`)
  }
  for await (const _ of helia.pins.rm(cid, { signal: opts.signal })) { /* drain */ }
}

/** Whether `cid` is the root of a pin (not merely a block inside pinned content). */
export async function isPinRoot (helia: Helia, cid: CID, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
  try {
    await helia.pins.get(cid, { signal: opts.signal })
    return true
  } catch (err) {
    if ((err as Error).name === 'NotFoundError') return false
    throw err
  }
}

export interface PinInfo { cid: CID, depth: number, metadata: PinMetadata }

/** `nearai pin ls`. */
export async function pinLs (helia: Helia, opts: { signal?: AbortSignal } = {}): Promise<PinInfo[]> {
  const out: PinInfo[] = []
  for await (const pin of helia.pins.ls({ signal: opts.signal })) out.push({ cid: pin.cid, depth: pin.depth, metadata: pin.metadata })
  return out
}

/**
 * Bytes held by pins, for a bootstrap node's /metrics: each pin's recorded size (measured once when
 * pinned here), or a local walk for pins made elsewhere. Blocks shared by two pins count twice.
 */
export async function pinnedBytes (helia: Helia, opts: { signal?: AbortSignal } = {}): Promise<number> {
  let total = 0
  for await (const pin of helia.pins.ls({ signal: opts.signal })) {
    total += typeof pin.metadata.bytes === 'number' ? pin.metadata.bytes : await dagSize(helia, pin.cid, { offline: true, signal: opts.signal }).catch(() => 0)
  }
  return total
}

export interface PinnedBytesMeter {
  /** Bytes held by pins now, as far as known; never walks a DAG while the caller waits. */
  read: (opts?: { signal?: AbortSignal }) => Promise<number>
}

/**
 * pinnedBytes() for a metrics scrape: a pin's recorded size when it has one; otherwise its DAG is walked
 * once, in the background, and the size remembered by CID (content under a CID never changes). Until that
 * walk ends (or when it fails) the pin counts 0, so a scrape costs one listing of the pins, not a read of
 * every block.
 */
export function pinnedBytesMeter (helia: Helia, opts: { onError?: (cid: CID, err: Error) => void } = {}): PinnedBytesMeter {
  const walked = new Map<string, number>()
  const walking = new Set<string>()
  return {
    read: async ({ signal } = {}) => {
      let total = 0
      const present = new Set<string>()
      for await (const pin of helia.pins.ls({ signal })) {
        if (typeof pin.metadata.bytes === 'number') { total += pin.metadata.bytes; continue }
        const key = pin.cid.toString()
        present.add(key)
        const known = walked.get(key)
        if (known != null) { total += known; continue }
        if (walking.has(key)) continue
        walking.add(key)
        dagSize(helia, pin.cid, { offline: true }).then(
          bytes => { walked.set(key, bytes) },
          // Counted as 0 rather than walked again at every scrape.
          (err: Error) => { walked.set(key, 0); opts.onError?.(pin.cid, err) }
        ).finally(() => { walking.delete(key) })
      }
      // Forget the sizes of pins that are gone.
      for (const key of walked.keys()) if (!present.has(key)) walked.delete(key)
      return total
    }
  }
}
