/**
 * @packageDocumentation
 *
 * NearAI storage: datasets and model checkpoints on IPFS through the node's one Helia instance
 * (`host.helia`). Thin functions over the Helia interface; each takes an AbortSignal, reports progress
 * through `onProgress` typed events, and bounds every network read by a deadline, a byte size taken
 * from a manifest, and a SHA-256. Errors are named and carry the CID they are about.
 *
 * @example
 * ```ts
 * import { addDataset, getDataset } from './node/storage/index.ts'
 *
 * const { cid } = await addDataset(host.helia, 'mnist:', { name: 'mnist', license: 'CC-BY-SA-3.0', shards: 8 })
 * const { manifest, shards } = await getDataset(other.helia, cid, { shard: 5, timeoutMs: 30_000 })
 * ```
 *
 * @example
 * ```ts
 * import { publishCheckpoint, getCheckpoint } from './node/storage/index.ts'
 * import { loadCheckpointModel, modelArtifacts } from './node/storage/checkpoint-model.ts'
 *
 * const { cid } = await publishCheckpoint(host.helia, { artifacts: await modelArtifacts(model), job, round, metrics })
 * const model2 = await loadCheckpointModel(await getCheckpoint(peer.helia, cid, { maxBytes: 100e6 }))
 * ```
 */
export * from './errors.ts'
export { DEFAULT_FETCH_TIMEOUT_MS, type BoundedFetchOptions, type FetchOptions, type FetchProgressEvents } from './fetch.ts'
export {
  addDataset, addFile, getDataset, getDatasetManifest, getShardBytes, listDatasets, planShards, DEFAULT_SHARD_BYTES,
  type AddDatasetOptions, type AddDatasetResult, type AddDatasetProgressEvents, type AddFileOptions, type DatasetFormatHint,
  type GetDatasetOptions, type FetchedDataset, type FetchedShard, type DatasetSummary
} from './datasets.ts'
export { pinAdd, pinRm, pinLs, pinnedBytes, pinDag, provideAll, type PinAddOptions, type PinInfo, type ProvideResult } from './pins.ts'
export { pinPublicDatasets, keepPublicDatasetsPinned, type PinPublicDatasetsOptions, type PinnedDataset, type PinPublicDatasetsProgressEvents } from './public-datasets.ts'
export { exportCar, importCar, type ExportCarOptions, type ImportCarOptions, type CarProgressEvents } from './car.ts'
export {
  publishCheckpoint, getCheckpoint, DEFAULT_MAX_CHECKPOINT_BYTES,
  type PublishCheckpointOptions, type PublishedCheckpoint, type GetCheckpointOptions, type FetchedCheckpoint, type ExtraFileInput
} from './checkpoints.ts'
export { unixfsImportOptions } from './import-options.ts'
export { mnistCsv, MNIST_FORMAT } from './importers/mnist.ts'
export { dagSize, walkDag } from './dag.ts'
