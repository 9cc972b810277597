/**
 * The job's data on this peer: the dataset manifest (fetched once), the shards assigned to it each round
 * (fetched from IPFS through the DHT, checked against the manifest's hashes, decoded and kept in memory),
 * and the held-out evaluation set.
 */
import type { Helia } from '@helia/interface'
import { CID } from 'multiformats/cid'
import type { DatasetManifest } from '../../protocol/dataset-manifest.ts'
import { getDatasetManifest, getShardBytes } from '../storage/datasets.ts'
import { decodeShard, type DecodeShardOptions } from '../training/data/decode-shard.ts'
import { labelsPerSample, type Samples } from '../training/local-trainer.ts'

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
    let samples = this.cache.get(index)
    if (samples == null) {
      const bytes = await getShardBytes(this.helia, this.cid, this.manifest, index, { timeoutMs: this.timeoutMs, signal })
      samples = decodeShard(this.manifest.format, bytes, { ...this.decode, samples: this.manifest.format.kind === 'text' ? undefined : this.manifest.shards[index].samples })
      if (this.inputShape != null) {
        if (product(samples.featureShape) !== product(this.inputShape)) {
          throw new IncompatibleDataError(`dataset ${this.cid.toString()} has samples of shape [${samples.featureShape.join(', ')}], the model takes [${this.inputShape.join(', ')}]`)
        }
        samples = { ...samples, featureShape: this.inputShape }
      }
      this.cache.set(index, samples)
    }
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
