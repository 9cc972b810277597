/**
 * Bootstrap pinning: a bootstrap node keeps the network's public datasets available. Each dataset is
 * fetched shard by shard (bitswap fetches a file's blocks in parallel; pinning alone would walk the DAG one
 * block at a time), every shard is checked against the manifest's SHA-256, then the whole DAG is pinned
 * and announced.
 *
 * `PublicDatasetKeeper` does this for as long as a node runs: each dataset on its own (one that cannot be
 * fetched is retried with backoff and never holds up the others), then re-checked every so often that it is
 * still pinned, and re-announced.
 */
import type { Helia } from '@helia/interface'
import type { Startable } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { getDatasetManifest, getShardBytes } from './datasets.ts'
import type { BoundedFetchOptions } from './fetch.ts'
import { pinDag, provideAll, type ProvideResult } from './pins.ts'
import { backoff, sleep, systemClock, withTimeout, type Clock } from '../time/clock.ts'

export type PinPublicDatasetsProgressEvents =
  ProgressEvent<'nearai:public-datasets:fetching', { cid: CID, attempt: number }> |
  ProgressEvent<'nearai:public-datasets:shard', { cid: CID, shard: number, shards: number }> |
  ProgressEvent<'nearai:public-datasets:pinned', { cid: CID, bytes: number, name?: string, shards?: number, alreadyPinned?: boolean }> |
  ProgressEvent<'nearai:public-datasets:provided', { cid: CID, provided: number, failed: number, error?: Error }> |
  ProgressEvent<'nearai:public-datasets:unpinned', { cid: CID }> |
  ProgressEvent<'nearai:public-datasets:failed', { cid: CID, error: Error, attempt?: number, retryInMs?: number }>

export interface PinPublicDatasetsOptions extends ProgressOptions<PinPublicDatasetsProgressEvents> {
  signal?: AbortSignal
  /** Deadline per piece of content (manifest, each shard); default 60 s. */
  timeoutMs?: number
  /** Shards of one dataset fetched at once (default 4). */
  shardConcurrency?: number
}

export interface PinnedPublicDataset {
  cid: CID
  name: string
  /** Bytes of the pinned DAG: the manifest block and every block of every shard. */
  bytes: number
  /** Roots of the shards, as the manifest lists them. */
  shards: CID[]
  alreadyPinned: boolean
}

/**
 * Fetches, verifies and pins one dataset (manifest and every shard); throws when any of it cannot be had.
 * Does not announce it: see provideAll. Content already pinned here is not fetched again.
 */
export async function pinPublicDataset (helia: Helia, cid: CID, opts: PinPublicDatasetsOptions = {}): Promise<PinnedPublicDataset> {
  const fetchOpts: BoundedFetchOptions = { signal: opts.signal, timeoutMs: opts.timeoutMs }
  const manifest = await getDatasetManifest(helia, cid, fetchOpts)
  const shards = manifest.shards.length
  if (!(await helia.pins.isPinned(cid, { signal: opts.signal }))) {
    let next = 0
    const worker = async (): Promise<void> => {
      for (let i = next++; i < shards; i = next++) {
        await getShardBytes(helia, cid, manifest, i, { ...fetchOpts, discard: true })
        opts.onProgress?.(new CustomProgressEvent('nearai:public-datasets:shard', { cid, shard: i, shards }))
      }
    }
    await Promise.all(Array.from({ length: Math.min(opts.shardConcurrency ?? 4, shards) }, worker))
  }
  const { bytes, alreadyPinned } = await pinDag(helia, cid, { signal: opts.signal, offline: true, metadata: { kind: 'dataset', name: manifest.name, public: true } })
  opts.onProgress?.(new CustomProgressEvent('nearai:public-datasets:pinned', { cid, bytes, name: manifest.name, shards, alreadyPinned }))
  return { cid, name: manifest.name, bytes, shards: manifest.shards.map(s => s.cid), alreadyPinned }
}

export type PublicDatasetState = 'pending' | 'fetching' | 'pinned' | 'failed'
export const PUBLIC_DATASET_STATES: readonly PublicDatasetState[] = ['pending', 'fetching', 'pinned', 'failed']

export interface PublicDatasetStatus {
  cid: CID
  state: PublicDatasetState
  name?: string
  /** Bytes of the pinned DAG, known once pinned (and kept while a re-check runs). */
  bytes?: number
  /** Failed attempts since the last success. */
  failures: number
  lastError?: Error
  /** When the next attempt (after a failure) or re-check (once pinned) is due, ms since the epoch. */
  nextAt?: number
}

export interface PublicDatasetKeeperInit extends Omit<PinPublicDatasetsOptions, 'signal'> {
  helia: Helia
  /** Dataset manifest CIDs; duplicates are kept once. */
  cids: CID[]
  /** Datasets fetched at once (default 2); re-checks of pinned ones do not wait for a slot. */
  concurrency?: number
  /** How often a pinned dataset is checked to be still pinned and re-announced (default 30 min). */
  recheckIntervalMs?: number
  /** Backoff after a failed attempt: doubles from retryMinMs (default 5 s) up to retryMaxMs (default 10 min). */
  retryMinMs?: number
  retryMaxMs?: number
  /** Deadline of one round of announcements on the DHT (default 2 min). */
  provideTimeoutMs?: number
  /** In [0, 1): spreads retries (±20%) so that many nodes do not retry in step. */
  random?: () => number
  clock?: Clock
}

/** Deadline of one round of announcements on the DHT. */
export const DEFAULT_PROVIDE_TIMEOUT_MS = 120_000
/** How often a pinned dataset is re-checked and re-announced (the DHT drops provider records after 48 h). */
export const DEFAULT_RECHECK_INTERVAL_MS = 30 * 60_000
/** After a failed attempt: 5 s doubling to 10 min, ±20% so that many nodes do not retry in step. */
const DEFAULT_RETRY = { initialMs: 5_000, maxMs: 10 * 60_000, jitter: 0.2 }

interface Entry extends PublicDatasetStatus { shards?: CID[] }

/**
 * Keeps public datasets pinned while started. Each dataset runs its own loop: fetch and pin (retried with
 * backoff until it succeeds), announce, then every `recheckIntervalMs` check the pin is still there (pin it
 * again if someone removed it) and announce again. `stop()` aborts fetches in flight and waits for the
 * loops to end.
 */
export class PublicDatasetKeeper implements Startable {
  private readonly entries: Entry[]
  private controller?: AbortController
  private loops: Array<Promise<void>> = []
  private readonly slots: Slots

  constructor (private readonly init: PublicDatasetKeeperInit) {
    const seen = new Set<string>()
    this.entries = []
    for (const cid of init.cids) {
      if (seen.has(cid.toString())) continue
      seen.add(cid.toString())
      this.entries.push({ cid, state: 'pending', failures: 0 })
    }
    this.slots = new Slots(init.concurrency ?? 2)
  }

  start (): void {
    if (this.controller != null) return
    const controller = new AbortController()
    this.controller = controller
    this.loops = this.entries.map(async entry => { await this.keep(entry, controller.signal) })
  }

  async stop (): Promise<void> {
    this.controller?.abort(new Error('public dataset keeper stopped'))
    this.controller = undefined
    await Promise.all(this.loops)
    this.loops = []
  }

  status (): PublicDatasetStatus[] {
    return this.entries.map(({ shards, ...status }) => ({ ...status }))
  }

  /** Datasets in each state. */
  counts (): Record<PublicDatasetState, number> {
    const out = Object.fromEntries(PUBLIC_DATASET_STATES.map(s => [s, 0])) as Record<PublicDatasetState, number>
    for (const e of this.entries) out[e.state]++
    return out
  }

  /** Bytes of the datasets pinned by this keeper, from sizes measured once at pin time. */
  pinnedBytes (): number {
    return this.entries.reduce((sum, e) => sum + (e.state === 'pinned' ? e.bytes ?? 0 : 0), 0)
  }

  private async keep (entry: Entry, signal: AbortSignal): Promise<void> {
    const { helia, onProgress } = this.init
    const clock = this.init.clock ?? systemClock
    while (!signal.aborted) {
      let delay = this.init.recheckIntervalMs ?? DEFAULT_RECHECK_INTERVAL_MS
      try {
        if (entry.state === 'pinned') {
          if (!(await helia.pins.isPinned(entry.cid, { signal }))) {
            entry.state = 'pending'
            onProgress?.(new CustomProgressEvent('nearai:public-datasets:unpinned', { cid: entry.cid }))
            continue
          }
        } else {
          await this.slots.run(signal, async () => {
            entry.state = 'fetching'
            onProgress?.(new CustomProgressEvent('nearai:public-datasets:fetching', { cid: entry.cid, attempt: entry.failures + 1 }))
            const { timeoutMs, shardConcurrency } = this.init
            const pinned = await pinPublicDataset(helia, entry.cid, { timeoutMs, shardConcurrency, onProgress, signal })
            entry.state = 'pinned'
            entry.name = pinned.name
            entry.bytes = pinned.bytes
            entry.shards = pinned.shards
            entry.failures = 0
            entry.lastError = undefined
          })
        }
        await this.provide(entry, signal)
      } catch (err) {
        if (signal.aborted) break
        entry.failures++
        entry.state = 'failed'
        entry.lastError = err as Error
        delay = this.backoff(entry.failures)
        onProgress?.(new CustomProgressEvent('nearai:public-datasets:failed', { cid: entry.cid, error: err as Error, attempt: entry.failures, retryInMs: delay }))
      }
      entry.nextAt = clock.now() + delay
      await sleep(delay, { signal, clock }).catch(() => {}) // stopped: the loop ends at its check
    }
  }

  /** Announces the manifest and the shard roots; a failure here is reported, not retried early. */
  private async provide (entry: Entry, signal: AbortSignal): Promise<void> {
    let result: ProvideResult
    try {
      result = await provideAll(this.init.helia, [entry.cid, ...(entry.shards ?? [])], { signal: withTimeout(signal, this.init.provideTimeoutMs ?? DEFAULT_PROVIDE_TIMEOUT_MS) })
    } catch (err) {
      signal.throwIfAborted()
      this.init.onProgress?.(new CustomProgressEvent('nearai:public-datasets:provided', { cid: entry.cid, provided: 0, failed: 1 + (entry.shards?.length ?? 0), error: err as Error }))
      return
    }
    this.init.onProgress?.(new CustomProgressEvent('nearai:public-datasets:provided', {
      cid: entry.cid, provided: result.provided.length, failed: result.failed.length, error: result.failed[0]?.error
    }))
  }

  private backoff (failures: number): number {
    return backoff(failures, { initialMs: this.init.retryMinMs ?? DEFAULT_RETRY.initialMs, maxMs: this.init.retryMaxMs ?? DEFAULT_RETRY.maxMs, jitter: DEFAULT_RETRY.jitter, random: this.init.random })
  }
}

/** At most `size` tasks at once; a waiting task gives up its place when its signal aborts. */
class Slots {
  private free: number
  private readonly waiting: Array<() => void> = []
  constructor (size: number) { this.free = Math.max(1, size) }

  async run<T> (signal: AbortSignal, task: () => Promise<T>): Promise<T> {
    if (this.free > 0) {
      this.free--
    } else {
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const i = this.waiting.indexOf(wake)
          if (i >= 0) this.waiting.splice(i, 1)
          reject(signal.reason)
        }
        const wake = (): void => { signal.removeEventListener('abort', onAbort); resolve() }
        if (signal.aborted) { onAbort(); return }
        signal.addEventListener('abort', onAbort, { once: true })
        this.waiting.push(wake)
      })
    }
    try {
      return await task()
    } finally {
      const next = this.waiting.shift()
      if (next != null) next()
      else this.free++
    }
  }
}
