/**
 * Bootstrap pinning: a bootstrap node keeps the network's public datasets available. Each dataset is
 * fetched shard by shard (bitswap fetches a file's blocks in parallel; pinning alone would walk the DAG one
 * block at a time), every shard is checked against the manifest's SHA-256, then the whole DAG is pinned
 * and announced.
 */
import type { Helia } from '@helia/interface'
import type { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { getDatasetManifest, getShardBytes } from './datasets.ts'
import type { BoundedFetchOptions } from './fetch.ts'
import { pinDag, provideAll } from './pins.ts'

export type PinPublicDatasetsProgressEvents =
  ProgressEvent<'nearai:public-datasets:shard', { cid: CID, shard: number, shards: number }> |
  ProgressEvent<'nearai:public-datasets:pinned', { cid: CID, bytes: number }> |
  ProgressEvent<'nearai:public-datasets:failed', { cid: CID, error: Error }>

export interface PinPublicDatasetsOptions extends ProgressOptions<PinPublicDatasetsProgressEvents> {
  signal?: AbortSignal
  /** Deadline per piece of content (manifest, each shard); default 60 s. */
  timeoutMs?: number
}

export interface PinnedDataset { cid: CID, ok: boolean, name?: string, bytes?: number, error?: Error }

/** Fetches, verifies, pins and provides each dataset; one failure does not stop the others. */
export async function pinPublicDatasets (helia: Helia, cids: CID[], opts: PinPublicDatasetsOptions = {}): Promise<PinnedDataset[]> {
  const results: PinnedDataset[] = []
  for (const cid of cids) {
    opts.signal?.throwIfAborted()
    try {
      const fetchOpts: BoundedFetchOptions = { signal: opts.signal, timeoutMs: opts.timeoutMs }
      const manifest = await getDatasetManifest(helia, cid, fetchOpts)
      if (!(await helia.pins.isPinned(cid))) {
        for (let i = 0; i < manifest.shards.length; i++) {
          await getShardBytes(helia, cid, manifest, i, { ...fetchOpts, discard: true })
          opts.onProgress?.(new CustomProgressEvent('nearai:public-datasets:shard', { cid, shard: i, shards: manifest.shards.length }))
        }
      }
      const { bytes } = await pinDag(helia, cid, { signal: opts.signal, offline: true, metadata: { kind: 'dataset', name: manifest.name, public: true } })
      await provideAll(helia, [cid, ...manifest.shards.map(s => s.cid)], { signal: opts.signal })
      results.push({ cid, ok: true, name: manifest.name, bytes })
      opts.onProgress?.(new CustomProgressEvent('nearai:public-datasets:pinned', { cid, bytes }))
    } catch (err) {
      opts.signal?.throwIfAborted()
      results.push({ cid, ok: false, error: err as Error })
      opts.onProgress?.(new CustomProgressEvent('nearai:public-datasets:failed', { cid, error: err as Error }))
    }
  }
  return results
}

/**
 * Keeps the public datasets pinned for as long as `signal` lives: retries the ones that failed and
 * re-announces all of them every `intervalMs` (default 30 min; the DHT drops provider records after 48 h).
 */
export async function keepPublicDatasetsPinned (helia: Helia, cids: CID[], opts: PinPublicDatasetsOptions & { intervalMs?: number, signal: AbortSignal }): Promise<void> {
  const interval = opts.intervalMs ?? 30 * 60_000
  while (!opts.signal.aborted) {
    await pinPublicDatasets(helia, cids, opts).catch(() => {})
    if (opts.signal.aborted) break
    await new Promise<void>(resolve => {
      const t = setTimeout(resolve, interval)
      opts.signal.addEventListener('abort', () => { clearTimeout(t); resolve() }, { once: true })
    })
  }
}
