/**
 * Datasets: import a file, a folder or a built-in source, cut it into shards on sample boundaries, store
 * each shard as a UnixFS file, and publish a dag-cbor manifest that links them; fetch a manifest and its
 * shards back with every byte checked against it.
 */
import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { extname } from 'node:path'
import { unixfs } from '@helia/unixfs'
import type { Helia } from '@helia/interface'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import {
  DATASET_MANIFEST_TYPE, DATASET_MANIFEST_VERSION, MAX_DATASET_MANIFEST_BYTES, MAX_DATASET_SHARDS, MAX_SHARD_BYTES,
  parseDatasetManifest, type DatasetManifest, type DatasetShard
} from '../../protocol/dataset-manifest.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { ContentTooLargeError, InvalidContentError, NoSuchShardError, StorageError, UnsupportedInputError } from './errors.ts'
import { fetchBlock, readVerifiedFile, sessionFor, sessionPhaseSignal, withDeadline, type BoundedFetchOptions, type FetchOptions } from './fetch.ts'
import { unixfsImportOptions } from './import-options.ts'
import { DEFAULT_DATASET_GET_MAX_BYTES, describeBytes } from './limits.ts'
import { csvSource, jsonLinesSource, textSource, type CsvOptions, type JsonLinesOptions } from './importers/lines.ts'
import { mnistSource } from './importers/mnist.ts'
import { imageFolderSource } from './importers/netpbm.ts'
import type { SampleSource } from './importers/source.ts'
import { pinDag, provideAll, type ProvideResult } from './pins.ts'
import { canPrefetch, prefetchDags } from './shard-stream/prefetch.ts'
import { findHolders } from './shard-stream/holders.ts'
import type { PeerId } from '@libp2p/interface'

export const DEFAULT_SHARD_BYTES = 16 * 1024 * 1024

export type DatasetFormatHint = 'csv' | 'jsonl' | 'text' | 'image-records' | 'mnist'

export interface DatasetImportProgress { shard: number, shards: number, imported: number, total: number }
export type AddDatasetProgressEvents =
  ProgressEvent<'nearai:dataset:import:bytes', DatasetImportProgress> |
  ProgressEvent<'nearai:dataset:import:shard', { shard: number, cid: CID }> |
  ProgressEvent<'nearai:dataset:provide', { cid: CID }>

export interface AddDatasetOptions extends ProgressOptions<AddDatasetProgressEvents> {
  name: string
  license: string
  description?: string
  /** Number of shards (split into equal sample counts). Wins over shardBytes. */
  shards?: number
  /** Target shard size in bytes (default 16 MiB); a shard always holds whole samples. */
  shardBytes?: number
  /** Force a format instead of guessing from the path. */
  format?: DatasetFormatHint
  /** Store shards as kubo's default `ipfs add` would (CIDv0, 256 KiB dag-pb leaves). */
  kuboCompatible?: boolean
  /** CSV / JSON Lines details (label column, feature key, class count, scale, shape). */
  csv?: CsvOptions
  jsonl?: JsonLinesOptions
  /** Announce the manifest and shards on the DHT (default true). */
  provide?: boolean
  signal?: AbortSignal
}

export interface AddDatasetResult {
  cid: CID
  manifest: DatasetManifest
  /** Announcement outcome; a node with no DHT peers yet still imports and pins. */
  provided: ProvideResult
}

/**
 * Imports `path` as a dataset. `path` is a file (.csv with a header row, .jsonl/.ndjson, anything else as
 * UTF-8 text), a folder of class subfolders of .pgm/.ppm images, or `mnist:` / `mnist:<count>` for the
 * MNIST digits shipped with the `mnist` package.
 */
export async function addDataset (helia: Helia, path: string, opts: AddDatasetOptions): Promise<AddDatasetResult> {
  const source = await openSource(path, opts)
  const bounds = planShards(source, opts)
  const fs = unixfs(helia)
  const shards: DatasetShard[] = []
  let imported = 0
  for (let k = 0; k + 1 < bounds.length; k++) {
    opts.signal?.throwIfAborted()
    const start = source.sampleEnds.at(bounds[k] - 1)
    const end = source.sampleEnds.at(bounds[k + 1] - 1)
    const hash = createHash('sha256')
    const tee = async function * (): AsyncGenerator<Uint8Array> {
      for await (const chunk of source.read(start, end, opts.signal)) {
        hash.update(chunk)
        imported += chunk.byteLength
        opts.onProgress?.(new CustomProgressEvent('nearai:dataset:import:bytes', { shard: k, shards: bounds.length - 1, imported, total: source.totalBytes }))
        yield chunk
      }
    }
    const cid = await fs.addByteStream(tee(), { ...unixfsImportOptions(opts.kuboCompatible), signal: opts.signal })
    shards.push({ cid, bytes: end - start, samples: bounds[k + 1] - bounds[k], sha256: hash.digest('hex') })
    opts.onProgress?.(new CustomProgressEvent('nearai:dataset:import:shard', { shard: k, cid }))
  }
  const manifest = parseDatasetManifest({
    type: DATASET_MANIFEST_TYPE,
    version: DATASET_MANIFEST_VERSION,
    name: opts.name,
    license: opts.license,
    ...(opts.description != null ? { description: opts.description } : {}),
    format: source.format,
    schema: source.schema,
    totalBytes: source.totalBytes,
    totalSamples: source.sampleEnds.length,
    shards
  }, `dataset manifest for ${path}`)
  const cid = await putManifest(helia, manifest)
  await pinDag(helia, cid, { signal: opts.signal, metadata: { kind: 'dataset', name: opts.name } })
  const provided = opts.provide === false
    ? { provided: [], failed: [] }
    : await provideAll(helia, [cid, ...shards.map(s => s.cid)], {
      signal: opts.signal,
      onProvided: c => opts.onProgress?.(new CustomProgressEvent('nearai:dataset:provide', { cid: c }))
    })
  return { cid, manifest, provided }
}

/** Stores the manifest as a dag-cbor block; its CID names the dataset. */
async function putManifest (helia: Helia, manifest: DatasetManifest): Promise<CID> {
  const bytes = dagCbor.encode(manifest)
  if (bytes.byteLength > MAX_DATASET_MANIFEST_BYTES) throw new UnsupportedInputError(`the manifest would be ${bytes.byteLength} bytes, over ${MAX_DATASET_MANIFEST_BYTES}: use fewer shards`)
  const cid = CID.createV1(dagCbor.code, await sha256.digest(bytes))
  await helia.blockstore.put(cid, bytes)
  return cid
}

async function openSource (path: string, opts: AddDatasetOptions): Promise<SampleSource> {
  const mnist = /^mnist:(\d*)$/.exec(path)
  if (opts.format === 'mnist' || mnist != null) {
    const count = mnist?.[1] != null && mnist[1] !== '' ? Number(mnist[1]) : undefined
    return mnistSource(count)
  }
  let info
  try {
    info = await stat(path)
  } catch {
    throw new UnsupportedInputError(`${path}: no such file or folder (or use mnist: for the built-in digits)`)
  }
  const kind = opts.format ?? (info.isDirectory() ? 'image-records' : guessFileFormat(path))
  if (info.isDirectory() !== (kind === 'image-records')) {
    throw new UnsupportedInputError(`${path}: format ${kind} needs ${kind === 'image-records' ? 'a folder of class subfolders' : 'a single file'}`)
  }
  switch (kind) {
    case 'csv': return await csvSource(path, opts.csv, opts.signal)
    case 'jsonl': return await jsonLinesSource(path, opts.jsonl, opts.signal)
    case 'text': return await textSource(path, opts.signal, { forced: opts.format === 'text' })
    case 'image-records': return await imageFolderSource(path, opts.signal)
    default: throw new UnsupportedInputError(`unknown format ${String(kind)}`)
  }
}

function guessFileFormat (path: string): DatasetFormatHint {
  const ext = extname(path).toLowerCase()
  if (ext === '.csv') return 'csv'
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl'
  return 'text'
}

/** Sample indices where shards start, plus the sample count at the end: [0, b1, ..., S]. */
export function planShards (source: Pick<SampleSource, 'sampleEnds' | 'totalBytes'>, opts: { shards?: number, shardBytes?: number }): number[] {
  const samples = source.sampleEnds.length
  if (opts.shards != null) {
    if (!Number.isInteger(opts.shards) || opts.shards < 1) throw new UnsupportedInputError('shards must be a positive integer')
    if (opts.shards > samples) throw new UnsupportedInputError(`cannot cut ${samples} samples into ${opts.shards} shards`)
    if (opts.shards > MAX_DATASET_SHARDS) throw new UnsupportedInputError(`at most ${MAX_DATASET_SHARDS} shards`)
    return checkShardSizes(source, Array.from({ length: opts.shards + 1 }, (_, k) => Math.floor(k * samples / (opts.shards as number))))
  }
  const target = opts.shardBytes ?? DEFAULT_SHARD_BYTES
  if (!(target > 0)) throw new UnsupportedInputError('shardBytes must be positive')
  if (target > MAX_SHARD_BYTES) throw new UnsupportedInputError(`shardBytes of ${describeBytes(target)} exceeds the limit of ${describeBytes(MAX_SHARD_BYTES)} a shard may hold (MAX_SHARD_BYTES)`)
  const bounds = [0]
  let shardStart = 0
  for (let i = 0; i < samples; i++) {
    // Close the shard before sample i when adding it would pass the target (never leave a shard empty).
    if (i > bounds[bounds.length - 1] && source.sampleEnds.at(i) - shardStart > target) {
      bounds.push(i)
      shardStart = source.sampleEnds.at(i - 1)
    }
  }
  bounds.push(samples)
  if (bounds.length - 1 > MAX_DATASET_SHARDS) throw new UnsupportedInputError(`${bounds.length - 1} shards of ${target} bytes exceed the limit of ${MAX_DATASET_SHARDS}: raise shardBytes`)
  return checkShardSizes(source, bounds)
}

/** Refuses a plan with a shard over MAX_SHARD_BYTES (too few shards, or one sample that large). */
function checkShardSizes (source: Pick<SampleSource, 'sampleEnds'>, bounds: number[]): number[] {
  for (let k = 0; k + 1 < bounds.length; k++) {
    const bytes = source.sampleEnds.at(bounds[k + 1] - 1) - source.sampleEnds.at(bounds[k] - 1)
    if (bytes > MAX_SHARD_BYTES) {
      throw new UnsupportedInputError(`shard ${k} would hold ${describeBytes(bytes)}, over the limit of ${describeBytes(MAX_SHARD_BYTES)} a shard may hold (MAX_SHARD_BYTES): cut the dataset into more shards`)
    }
  }
  return bounds
}

export interface ShardFetchOptions extends FetchOptions {
  /**
   * Fetch over shard streams from the holders first (the default), bitswap for whatever they do not
   * deliver; `false`: bitswap only.
   */
  shardStreams?: boolean
  /** Holders to ask on shard streams (looked up on the DHT and among connected peers when omitted). */
  holders?: PeerId[]
  /** Shard streams open at once to one holder for one shard (default 2). */
  streamsPerHolder?: number
}

export interface GetDatasetOptions extends ShardFetchOptions {
  /** Fetch only this shard (0-based); all shards when omitted. */
  shard?: number
  /** Shards fetched at once (default 4). */
  concurrency?: number
  /** Refuse (ContentTooLargeError) when the shards asked for add up to more bytes than this (default DEFAULT_DATASET_GET_MAX_BYTES). */
  maxBytes?: number
}

export interface FetchedShard { index: number, cid: CID, bytes: Uint8Array }
export interface FetchedDataset { cid: CID, manifest: DatasetManifest, shards: FetchedShard[] }

/** Fetches and validates a dataset manifest (one block of at most 1 MiB). */
export async function getDatasetManifest (helia: Helia, cid: CID, opts: BoundedFetchOptions = {}): Promise<DatasetManifest> {
  const bytes = await withDeadline(cid, opts, async (signal) => await fetchBlock(helia, cid, MAX_DATASET_MANIFEST_BYTES, signal, opts.offline))
  return decodeDatasetManifest(cid, bytes)
}

export function decodeDatasetManifest (cid: CID, bytes: Uint8Array): DatasetManifest {
  if (cid.code !== dagCbor.code) throw new InvalidContentError(cid, `${cid.toString()} is not a dataset manifest (not dag-cbor)`)
  let value: unknown
  try {
    value = dagCbor.decode(bytes)
  } catch (err) {
    throw new InvalidContentError(cid, `${cid.toString()} is not valid dag-cbor: ${(err as Error).message}`)
  }
  try {
    return parseDatasetManifest(value, `dataset manifest ${cid.toString()}`)
  } catch (err) {
    if (err instanceof InvalidMessageError) throw new InvalidContentError(cid, err.message, { cause: err })
    throw err
  }
}

/**
 * Fetches a dataset: the manifest, then one shard or all of them, each bounded by `timeoutMs` (per piece
 * of content), by the byte size its manifest declares, and checked against its SHA-256.
 */
export async function getDataset (helia: Helia, cid: CID, opts: GetDatasetOptions = {}): Promise<FetchedDataset> {
  const manifest = await getDatasetManifest(helia, cid, opts)
  if (opts.shard != null) checkShardIndex(cid, manifest, opts.shard)
  const indices = opts.shard != null ? [opts.shard] : manifest.shards.map((_, i) => i)
  const wanted = indices.reduce((sum, i) => sum + (manifest.shards[i]?.bytes ?? 0), 0)
  const maxBytes = opts.maxBytes ?? DEFAULT_DATASET_GET_MAX_BYTES
  if (wanted > maxBytes) {
    throw new ContentTooLargeError(cid, `dataset get: dataset ${cid.toString()}: the ${indices.length} shard(s) asked for hold ${describeBytes(wanted)}, over the limit of ${describeBytes(maxBytes)} (--max-bytes; fetch one shard with --shard)`, maxBytes)
  }
  // The holders are looked up once for the whole dataset; each shard is then spread over all of them on
  // shard streams (and checked as it is read) while the next shards are still arriving.
  const holders = indices.length > 1 ? await shardHolders(helia, cid, manifest.shards[indices[0]].cid, opts) : opts.holders
  const shards: FetchedShard[] = new Array(indices.length)
  let next = 0
  const worker = async (): Promise<void> => {
    for (let k = next++; k < indices.length; k = next++) {
      const index = indices[k]
      // Several shards are in flight at once: one stream per holder for each is enough to keep every holder busy.
      shards[k] = { index, cid: manifest.shards[index].cid, bytes: await getShardBytes(helia, cid, manifest, index, { ...opts, holders, streamsPerHolder: opts.streamsPerHolder ?? (indices.length > 1 ? 1 : undefined) }) }
    }
  }
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, indices.length) }, worker))
  return { cid, manifest, shards }
}

/** One shard's bytes, verified. `discard` streams them through the checks without keeping them. */
export async function getShardBytes (helia: Helia, datasetCid: CID, manifest: DatasetManifest, index: number, opts: ShardFetchOptions & { discard?: boolean } = {}): Promise<Uint8Array> {
  checkShardIndex(datasetCid, manifest, index)
  const shard = manifest.shards[index]
  return await withDeadline(shard.cid, opts, async (signal, state) => {
    // Progress of the shard streams is the shard's progress (clamped: the DAG's own nodes add a few bytes).
    let streamed = 0
    const complete = await prefetchOnStreams(helia, [shard.cid], signal, state, opts, (n) => {
      streamed += n
      opts.onProgress?.(new CustomProgressEvent('nearai:storage:fetch:bytes', { cid: shard.cid, received: Math.min(streamed, shard.bytes), total: shard.bytes }))
    })
    const sessionSignal = sessionPhaseSignal(signal, opts)
    // 'local': only this node's blockstore (what the shard streams brought; their progress already told);
    // 'session': a bitswap session with the DHT's providers; 'any': every connected peer until the deadline.
    const read = async (from: 'local' | 'session' | 'any'): Promise<Uint8Array> => await readVerifiedFile(helia, shard.cid, {
      signal: from === 'session' ? sessionSignal : signal,
      state,
      bytes: shard.bytes,
      sha256: shard.sha256,
      offline: from === 'local' ? true : opts.offline,
      discard: opts.discard,
      blockstore: from === 'session' ? sessionFor(helia, shard.cid, sessionSignal, opts.offline) : undefined,
      what: `shard ${index} of dataset ${datasetCid.toString()}`,
      onProgress: from === 'local' ? undefined : opts.onProgress
    })
    if (complete) {
      // Every block came on shard streams: read them here, no bitswap session needed. Should one be
      // missing after all, the reads below fetch it.
      try {
        const bytes = await read('local')
        opts.onProgress?.(new CustomProgressEvent('nearai:storage:fetch:bytes', { cid: shard.cid, received: shard.bytes, total: shard.bytes }))
        return bytes
      } catch (err) {
        if (signal.aborted || err instanceof StorageError) throw err
      }
    }
    try {
      return await read(opts.offline !== true ? 'session' : 'any')
    } catch (err) {
      // A session only asks peers the DHT names as providers; when it finds none (Helia's
      // InsufficientProvidersError inside a LoadBlockFailedError) or none delivers within its share of the
      // deadline, fall back to asking every connected peer (and the DHT block by block) until the deadline.
      // Errors about the content itself are final.
      if (signal.aborted || err instanceof StorageError) throw err
      return await read('any')
    }
  })
}

/** The holders of a dataset's shards on shard streams (none when the fetch does not use them). */
async function shardHolders (helia: Helia, datasetCid: CID, root: CID, opts: ShardFetchOptions): Promise<PeerId[] | undefined> {
  if (opts.holders != null || opts.offline === true || opts.shardStreams === false || !canPrefetch(helia)) return opts.holders
  return await withDeadline(datasetCid, opts, async (signal) => await findHolders(helia.libp2p, root, { signal }))
}

/**
 * Brings `roots` in over shard streams (see prefetchDags) under the fetch's deadline; true when every block
 * arrived. Never fatal but for an abort: what did not arrive is left to bitswap.
 */
async function prefetchOnStreams (helia: Helia, roots: CID[], signal: AbortSignal, state: { received: number }, opts: ShardFetchOptions, onBytes?: (n: number) => void): Promise<boolean> {
  if (opts.offline === true || opts.shardStreams === false || !canPrefetch(helia)) return false
  const report = await prefetchDags(helia, roots, { signal, holders: opts.holders, streamsPerHolder: opts.streamsPerHolder, onBytes: n => { state.received += n; onBytes?.(n) } })
  return report.complete
}

/** Throws NoSuchShardError unless `index` names one of the manifest's shards. */
export function checkShardIndex (cid: CID, manifest: DatasetManifest, index: number): void {
  const n = manifest.shards.length
  if (!Number.isInteger(index) || index < 0 || index >= n) {
    throw new NoSuchShardError(cid, `dataset ${cid.toString()} has ${n} shard${n === 1 ? '' : 's'} (${n === 1 ? '0' : `0–${n - 1}`}); there is no shard ${index}`)
  }
}

export interface DatasetSummary {
  cid: CID
  name: string
  license: string
  format: DatasetManifest['format']['kind']
  shards: number
  totalBytes: number
  totalSamples: number
}

/** Datasets pinned on this node (every pinned dag-cbor root that is a valid manifest). */
export async function listDatasets (helia: Helia, opts: { signal?: AbortSignal } = {}): Promise<DatasetSummary[]> {
  const out: DatasetSummary[] = []
  for await (const pin of helia.pins.ls({ signal: opts.signal })) {
    if (pin.cid.code !== dagCbor.code) continue
    try {
      const m = await getDatasetManifest(helia, pin.cid, { offline: true, signal: opts.signal })
      out.push({ cid: pin.cid, name: m.name, license: m.license, format: m.format.kind, shards: m.shards.length, totalBytes: m.totalBytes, totalSamples: m.totalSamples })
    } catch {
      // a pinned dag-cbor object that is not a dataset manifest
    }
  }
  return out
}

export interface AddFileOptions extends ProgressOptions<ProgressEvent<'nearai:file:import:bytes', { imported: number, total: number }>> {
  kuboCompatible?: boolean
  provide?: boolean
  signal?: AbortSignal
}

/**
 * Adds one file as it is (no sharding, no manifest), pinned and announced. With `kuboCompatible` its CID
 * equals the CIDv0 kubo's default `ipfs add` gives for the same bytes.
 */
export async function addFile (helia: Helia, path: string, opts: AddFileOptions = {}): Promise<{ cid: CID, bytes: number, provided: ProvideResult }> {
  const total = (await stat(path)).size
  let imported = 0
  const counted = async function * (): AsyncGenerator<Uint8Array> {
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024, signal: opts.signal }) as AsyncIterable<Buffer>) {
      imported += chunk.byteLength
      opts.onProgress?.(new CustomProgressEvent('nearai:file:import:bytes', { imported, total }))
      yield chunk
    }
  }
  const cid = await unixfs(helia).addByteStream(counted(), { ...unixfsImportOptions(opts.kuboCompatible), signal: opts.signal })
  await pinDag(helia, cid, { signal: opts.signal, metadata: { kind: 'file' } })
  const provided = opts.provide === false ? { provided: [], failed: [] } : await provideAll(helia, [cid], { signal: opts.signal })
  return { cid, bytes: total, provided }
}
