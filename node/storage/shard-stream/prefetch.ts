/**
 * The fast path of a dataset fetch: brings the blocks of UnixFS DAGs (shards) into the local blockstore
 * over shard streams, spread across the holders found, so that the read that follows (UnixFS export +
 * the manifest's SHA-256, unchanged) finds them local. It never fails the fetch: whatever it could not
 * get (no holder speaks the protocol, a holder refused, sent a bad or unrequested block, stalled) is left
 * to bitswap, which that read then uses for the missing blocks; a holder that failed is skipped for a while.
 *
 * Spreading: the work is cut into units (a list of CIDs, each fetched with everything below it). With
 * enough roots for every worker, a unit is a root; otherwise the roots are expanded (their blocks fetched
 * alone) into their children, level by level, until there are enough subtrees (a single shard becomes
 * ranges of its leaves). Each holder runs `streamsPerHolder` workers that take units from one queue, so a
 * fast holder takes more of them.
 */
import type { Helia } from '@helia/interface'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { DAG_PB_CODE, MAX_REQUEST_CIDS, RAW_CODE, SHA2_256_CODE } from '../../../protocol/shard-stream.ts'
import { ShardStreamError, streamBlocks, type ShardStreamFailure } from './client.ts'
import { findHolders, penalise, penalised } from './holders.ts'
import { linkDecoder, type LinkDecoder } from './links.ts'

export interface PrefetchOptions {
  signal: AbortSignal
  /** Ask these peers (instead of looking holders up). */
  holders?: PeerId[]
  /** Streams open at once to one holder (default 2). */
  streamsPerHolder?: number
  maxHolders?: number
  lookupMs?: number
  idleTimeoutMs?: number
  /** Tries of one unit on different holders before it is left to bitswap (default 3). */
  maxAttempts?: number
  /** Called with every verified block's size. */
  onBytes?: (bytes: number) => void
  /** Called when a holder is given up on, with why. */
  onHolderFailed?: (peer: PeerId, err: ShardStreamError) => void
}

export interface PrefetchReport {
  /** Holders asked. */
  holders: string[]
  /** Holders given up on, with the reason. */
  failed: Array<{ peer: string, failure: string, message: string }>
  blocks: number
  bytes: number
  /** Units (subtrees) not fetched here: bitswap gets them. */
  leftOver: number
  /** Every block of the roots' DAGs is now in the local blockstore (all fetched, or already here). */
  complete: boolean
}

type PrefetchHelia = Pick<Helia, 'blockstore' | 'getCodec'> & { libp2p: Pick<Libp2p, 'peerId' | 'getConnections' | 'peerStore' | 'dialProtocol' | 'contentRouting'> }

/** True when `helia` has a libp2p host to stream from (a home's offline store has none). */
export function canPrefetch (helia: Helia): helia is Helia & PrefetchHelia {
  return (helia as Partial<PrefetchHelia>).libp2p?.dialProtocol != null
}

interface Unit { cids: CID[], attempts: number, tried: Set<string> }

const PENALISED = new Set<ShardStreamFailure>(['unsupported', 'unrequested-block', 'bad-block', 'protocol', 'incomplete', 'timeout'])

export async function prefetchDags (helia: PrefetchHelia, roots: CID[], opts: PrefetchOptions): Promise<PrefetchReport> {
  const report: PrefetchReport = { holders: [], failed: [], blocks: 0, bytes: 0, leftOver: 0, complete: false }
  const wanted = dedupe(roots.filter(isUnixfsBlock))
  if (wanted.length === 0) return report
  const libp2p = helia.libp2p
  const links = linkDecoder(helia)
  const found = opts.holders?.filter(p => !penalised(libp2p, p)) ?? await findHolders(libp2p, wanted[0], { signal: opts.signal, maxHolders: opts.maxHolders, lookupMs: opts.lookupMs })
  const holders = rotate(libp2p, found)
  report.holders = holders.map(String)
  if (holders.length === 0) return report
  const streams = opts.streamsPerHolder ?? 2
  const live = new Set(holders.map(String))

  const put = async (cid: CID, bytes: Uint8Array): Promise<void> => { await helia.blockstore.put(cid, bytes, { signal: opts.signal }) }
  const onBlock = (bytes: number): void => { report.blocks++; report.bytes += bytes; opts.onBytes?.(bytes) }
  const fail = (peer: PeerId, err: unknown): void => {
    opts.signal.throwIfAborted()
    if (!(err instanceof ShardStreamError)) throw err
    live.delete(peer.toString())
    // A holder that broke the protocol (bad or unrequested blocks, garbage, stalling) or does not speak it is
    // skipped for a while. One that refused (`busy`, `not-found`: no fault) or could not be reached now
    // (no direct address, too many streams open) is skipped for this fetch only.
    if (PENALISED.has(err.failure)) penalise(libp2p, peer)
    report.failed.push({ peer: peer.toString(), failure: err.holderCode ?? err.failure, message: err.message })
    opts.onHolderFailed?.(peer, err)
  }
  const request = async (peer: PeerId, cids: CID[], recursive: boolean): Promise<void> => {
    await streamBlocks(libp2p, peer, cids, recursive, { signal: opts.signal, idleTimeoutMs: opts.idleTimeoutMs, links, put, onBlock })
  }

  // Expand the roots until there is a unit for every worker (at most a few levels: a UnixFS DAG is shallow).
  const workers = holders.length * streams
  const target = holders.length === 1 ? streams : workers * 2
  let frontier = wanted
  // Raw leaves are never fetched alone here: they are the bulk, and go to the workers.
  for (let level = 0; level < 4 && frontier.length < workers && !frontier.every(c => c.code === RAW_CODE); level++) {
    const missing: CID[] = []
    for (const cid of frontier) if (!await helia.blockstore.has(cid, { signal: opts.signal })) missing.push(cid)
    if (missing.length > 0 && !await firstThatWorks(holders, live, async peer => { await request(peer, missing, false) }, fail)) {
      report.leftOver = frontier.length
      return report
    }
    const next: CID[] = []
    for (const cid of frontier) next.push(...await links(cid, await localBlock(helia, cid, opts.signal)))
    frontier = dedupe(next)
    if (frontier.length === 0) { report.complete = true; return report }
  }
  // Leaves already here need nothing; anything else is fetched with its subtree.
  const todo: CID[] = []
  for (const cid of frontier) if (cid.code !== RAW_CODE || !await helia.blockstore.has(cid, { signal: opts.signal })) todo.push(cid)
  if (todo.length === 0) { report.complete = true; return report }
  const queue: Unit[] = split(todo, target).map(cids => ({ cids, attempts: 0, tried: new Set() }))
  const maxAttempts = opts.maxAttempts ?? 3
  const parked: Unit[] = []

  // A worker whose holder failed hands its unit back; workers with nothing to take wait while units are
  // in flight, since one may come back.
  let inFlight = 0
  let changed = deferred()
  const signalChange = (): void => { changed.resolve(); changed = deferred() }
  const worker = async (peer: PeerId): Promise<void> => {
    const key = peer.toString()
    while (live.has(key)) {
      const at = queue.findIndex(u => !u.tried.has(key))
      if (at < 0) {
        if (inFlight === 0) return
        await changed.promise
        continue
      }
      const [unit] = queue.splice(at, 1)
      unit.attempts++
      unit.tried.add(key)
      inFlight++
      try {
        await request(peer, unit.cids, true)
      } catch (err) {
        fail(peer, err)
        if (unit.attempts < maxAttempts) queue.push(unit)
        else parked.push(unit)
        return
      } finally {
        inFlight--
        signalChange()
      }
    }
  }
  // Workers start holder by holder, round after round, so the first units go to different holders.
  const running: Array<Promise<void>> = []
  for (let s = 0; s < streams; s++) for (const peer of holders) running.push(worker(peer))
  await Promise.all(running)
  report.leftOver = queue.length + parked.length
  report.complete = report.leftOver === 0
  return report
}

/**
 * The holders, starting one further along at every call: the shards a node reads at once begin on
 * different holders (their root blocks, and the first units, come from the first one).
 */
const rotations = new WeakMap<object, number>()
function rotate (libp2p: object, holders: PeerId[]): PeerId[] {
  if (holders.length < 2) return holders
  const turn = rotations.get(libp2p) ?? 0
  rotations.set(libp2p, turn + 1)
  const k = turn % holders.length
  return [...holders.slice(k), ...holders.slice(0, k)]
}

async function firstThatWorks (holders: PeerId[], live: Set<string>, fn: (peer: PeerId) => Promise<void>, fail: (peer: PeerId, err: unknown) => void): Promise<boolean> {
  for (const peer of holders) {
    if (!live.has(peer.toString())) continue
    try {
      await fn(peer)
      return true
    } catch (err) {
      fail(peer, err)
    }
  }
  return false
}

function deferred (): { promise: Promise<void>, resolve: () => void } {
  let resolve = (): void => {}
  const promise = new Promise<void>(r => { resolve = r })
  return { promise, resolve }
}

async function localBlock (helia: Pick<Helia, 'blockstore'>, cid: CID, signal: AbortSignal): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of helia.blockstore.get(cid, { signal, offline: true })) chunks.push(chunk)
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
}

function isUnixfsBlock (cid: CID): boolean {
  return (cid.code === DAG_PB_CODE || cid.code === RAW_CODE) && cid.multihash.code === SHA2_256_CODE
}

function dedupe (cids: CID[]): CID[] {
  const seen = new Set<string>()
  return cids.filter(c => { const k = c.toString(); if (seen.has(k)) return false; seen.add(k); return true })
}

/** `cids` in at most `parts` contiguous runs of near-equal length, each within a request's limit. */
export function split (cids: CID[], parts: number): CID[][] {
  if (cids.length === 0) return []
  const n = Math.max(Math.min(parts, cids.length), Math.ceil(cids.length / MAX_REQUEST_CIDS))
  const out: CID[][] = []
  for (let i = 0; i < n; i++) {
    const run = cids.slice(Math.floor(i * cids.length / n), Math.floor((i + 1) * cids.length / n))
    if (run.length > 0) out.push(run)
  }
  return out
}

export type { LinkDecoder }
