/**
 * The job's data on this peer: the dataset manifest (fetched once), the shards assigned to it each round
 * (fetched from IPFS through the DHT, checked against the manifest's hashes, decoded and kept in memory),
 * and the held-out evaluation set.
 */
import type { Helia } from '@helia/interface'
import type { Logger } from 'pino'
import { CID } from 'multiformats/cid'
import type { DatasetManifest } from '../../protocol/dataset-manifest.ts'
import { getDatasetManifest, getShardBytes } from '../storage/datasets.ts'
import { ContentNotFoundError, ContentTooLargeError, FetchTimeoutError } from '../storage/errors.ts'
import { DEFAULT_EVAL_SET_MAX_BYTES, describeBytes } from '../storage/limits.ts'
import { decodeShard, type DecodeShardOptions } from '../training/data/decode-shard.ts'
import { sliceSamples } from '../training/data/mnist.ts'
import type { JobSpec } from '../training/job-spec.ts'
import { labelsPerSample, type Samples } from '../training/local-trainer.ts'
import { backoff, sleep, type BackoffPolicy } from '../time/clock.ts'

/** The dataset's samples do not fit the job's model: a configuration error, not worth retrying. */
export class IncompatibleDataError extends Error {
  override name = 'IncompatibleDataError'
}

const product = (shape: number[]): number => shape.reduce((a, b) => a * b, 1)

export function concatSamples (parts: Samples[]): Samples {
  if (parts.length === 1) return parts[0]
  const per = product(parts[0].featureShape)
  const labels = labelsPerSample(parts[0])
  const count = parts.reduce((n, p) => n + p.count, 0)
  const x = new Float32Array(count * per)
  const y = new Int32Array(count * labels)
  let at = 0
  for (const p of parts) { x.set(p.x, at * per); y.set(p.y, at * labels); at += p.count }
  return { ...parts[0], x, y, count }
}

export class ShardData {
  private readonly cache = new Map<number, Samples>()
  private readonly fetching = new Map<number, Promise<Samples>>()
  private constructor (private readonly helia: Helia, readonly cid: CID, readonly manifest: DatasetManifest, private readonly timeoutMs: number, private readonly decode: DecodeShardOptions, private readonly inputShape?: number[]) {}

  /**
   * `decode` carries what the model decides (a language model's context length and vocabulary);
   * `inputShape` is the model's input shape: samples are viewed in it (an MLP takes an image flattened), and a
   * dataset whose samples hold another number of values is refused with both shapes named.
   */
  static async open (helia: Helia, cid: string, opts: { timeoutMs?: number, signal?: AbortSignal, decode?: DecodeShardOptions, inputShape?: number[] } = {}): Promise<ShardData> {
    const parsed = CID.parse(cid)
    const timeoutMs = opts.timeoutMs ?? 60_000
    const manifest = await getDatasetManifest(helia, parsed, { timeoutMs, signal: opts.signal })
    return new ShardData(helia, parsed, manifest, timeoutMs, opts.decode ?? {}, opts.inputShape)
  }

  get shardCount (): number { return this.manifest.shards.length }

  async shard (index: number, signal?: AbortSignal): Promise<Samples> {
    const cached = this.cache.get(index)
    if (cached != null) return cached
    // One fetch per shard at a time: a prefetch of the next round's shards and the round itself may ask together.
    let fetching = this.fetching.get(index)
    if (fetching == null) {
      fetching = this.fetch(index, signal).finally(() => { this.fetching.delete(index) })
      this.fetching.set(index, fetching)
    }
    return await fetching
  }

  private async fetch (index: number, signal?: AbortSignal): Promise<Samples> {
    const bytes = await getShardBytes(this.helia, this.cid, this.manifest, index, { timeoutMs: this.timeoutMs, signal })
    let samples = decodeShard(this.manifest.format, bytes, { ...this.decode, samples: this.manifest.format.kind === 'text' ? undefined : this.manifest.shards[index].samples })
    if (this.inputShape != null) {
      if (product(samples.featureShape) !== product(this.inputShape)) {
        throw new IncompatibleDataError(`dataset ${this.cid.toString()} has samples of shape [${samples.featureShape.join(', ')}], the model takes [${this.inputShape.join(', ')}]`)
      }
      samples = { ...samples, featureShape: this.inputShape }
    }
    this.cache.set(index, samples)
    return samples
  }

  async shards (indexes: number[], signal?: AbortSignal): Promise<Samples | undefined> {
    if (indexes.length === 0) return undefined
    const parts: Samples[] = []
    for (const i of indexes) parts.push(await this.shard(i, signal))
    return concatSamples(parts)
  }

  async all (signal?: AbortSignal): Promise<Samples> {
    return (await this.shards(this.manifest.shards.map((_, i) => i), signal))!
  }
}

/** Waits between tries to fetch the job's data: 2, 4, 8... seconds, at most a minute. */
export const DATA_RETRY: BackoffPolicy = { initialMs: 2_000, maxMs: 60_000 }

export interface JobData {
  /** The training shards. */
  data: ShardData
  /** The held-out samples the job evaluates on (at most `eval.maxSamples`), when it names an evaluation dataset. */
  evalSet?: Samples
}

/**
 * Opens the job's datasets, shaped for its model. The data may not be reachable yet (its providers still
 * starting, a slow link): fetches are retried with backoff until the signal aborts. Content that is there
 * but wrong (a bad manifest, samples that do not fit the model) fails at once: it will not get better.
 */
export async function openJobData (helia: Helia, spec: JobSpec, opts: { signal: AbortSignal, logger: Logger, timeoutMs?: number }): Promise<JobData> {
  const data = await retryingFetch(opts, 'dataset', async () => {
    const opened = await openForModel(helia, spec, spec.dataset, opts)
    await opened.shard(0, opts.signal) // the samples fit the model (fails now, with both shapes, rather than every round)
    return opened
  })
  const evalDataset = spec.evalDataset
  if (evalDataset == null) return { data }
  const evalSet = await retryingFetch(opts, 'evaluation dataset', async () => await loadEvaluationSamples(helia, spec, evalDataset, opts))
  return { data, evalSet }
}

/** A dataset of the job, decoded and shaped for its model. */
async function openForModel (helia: Helia, spec: JobSpec, cid: string, opts: { signal?: AbortSignal, timeoutMs?: number }): Promise<ShardData> {
  const decode = spec.model.kind === 'char-transformer' ? { context: spec.model.context } : {}
  const inputShape = spec.model.kind === 'mlp' ? [spec.model.inputs] : spec.model.kind === 'cnn' ? [...spec.model.inputShape] : undefined
  return await ShardData.open(helia, cid, { timeoutMs: opts.timeoutMs, signal: opts.signal, decode, inputShape })
}

/**
 * The job's evaluation samples as every trainer and validator reads them: the dataset `cid` (the spec's
 * `evalDataset`) decoded for the job's model, its first `eval.maxSamples` samples in the dataset's order. One
 * definition, so that the deterministic evaluation attested on chain runs on the same samples everywhere.
 */
export async function loadEvaluationSamples (helia: Helia, spec: JobSpec, cid: string, opts: { signal?: AbortSignal, timeoutMs?: number, maxBytes?: number } = {}): Promise<Samples> {
  const data = await openForModel(helia, spec, cid, opts)
  // Shards in the dataset's order, only until `maxSamples` are in: the same first samples as reading them all.
  const maxBytes = opts.maxBytes ?? DEFAULT_EVAL_SET_MAX_BYTES
  const parts: Samples[] = []
  let count = 0
  let bytes = 0
  for (let i = 0; i < data.shardCount && count < spec.eval.maxSamples; i++) {
    bytes += data.manifest.shards[i].bytes
    if (bytes > maxBytes) {
      throw new ContentTooLargeError(data.cid, `evaluation set ${cid}: its first ${i + 1} shard(s) hold ${describeBytes(bytes)} for ${spec.eval.maxSamples} samples, over the limit of ${describeBytes(maxBytes)} (DEFAULT_EVAL_SET_MAX_BYTES)`, maxBytes)
    }
    const part = await data.shard(i, opts.signal)
    parts.push(part)
    count += part.count
  }
  const all = concatSamples(parts)
  return sliceSamples(all, 0, Math.min(all.count, spec.eval.maxSamples))
}

/** Runs `fetch` until it succeeds, waiting DATA_RETRY between tries while the content cannot be found; only an abort stops it. */
async function retryingFetch<T> ({ signal, logger }: { signal: AbortSignal, logger: Logger }, what: string, fetch: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch()
    } catch (err) {
      if (signal.aborted || !(err instanceof ContentNotFoundError || err instanceof FetchTimeoutError)) throw err
      const delay = backoff(attempt, DATA_RETRY)
      logger.warn({ attempt, retryInMs: delay, err: (err as Error).message }, `could not fetch the ${what}; retrying`)
      await sleep(delay, { signal })
    }
  }
}
