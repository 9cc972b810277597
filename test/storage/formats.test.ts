import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import type { Host } from '../../node/network/host.ts'
import { addDataset, decodeDatasetManifest, getDataset, planShards } from '../../node/storage/datasets.ts'
import { decodeNetpbm, encodeNetpbm } from '../../node/storage/importers/netpbm.ts'
import { mnistCsv } from '../../node/storage/importers/mnist.ts'
import { SampleOffsets } from '../../node/storage/importers/source.ts'
import { InvalidContentError, UnsupportedInputError } from '../../node/storage/errors.ts'
import { DatasetFormat } from '../../protocol/dataset-format.ts'
import { parseDatasetManifest } from '../../protocol/dataset-manifest.ts'
import { parseCheckpointManifest } from '../../protocol/checkpoint-manifest.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { startHost, stopAll } from './helpers.ts'
import { removeDir } from '../helpers/temp-dir.ts'

describe('storage: formats and sharding', function () {
  this.timeout(60_000)
  let dir: string
  let host: Host

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-formats-'))
    host = await startHost()
  })
  after(async () => {
    await stopAll([host])
    await removeDir(dir)
  })

  async function shardsOf (cid: Parameters<typeof getDataset>[1]): Promise<Buffer[]> {
    return (await getDataset(host.helia, cid, { offline: true })).shards.map(s => Buffer.from(s.bytes))
  }

  it('cuts shards on sample boundaries only, equal sample counts or up to a byte target', () => {
    const ends = new SampleOffsets()
    for (const e of [10, 25, 30, 100, 101, 102, 150]) ends.push(e)
    assert.deepEqual(planShards({ sampleEnds: ends, totalBytes: 150 }, { shards: 3 }), [0, 2, 4, 7])
    assert.deepEqual(planShards({ sampleEnds: ends, totalBytes: 150 }, { shardBytes: 30 }), [0, 3, 4, 6, 7])
    assert.throws(() => planShards({ sampleEnds: ends, totalBytes: 150 }, { shards: 8 }), UnsupportedInputError)
  })

  it('MNIST (mnist:) becomes csv shards matching the csv DatasetFormat, deterministic', async () => {
    const one = await addDataset(host.helia, 'mnist:1000', { name: 'mnist', license: 'CC-BY-SA-3.0', shards: 4, provide: false })
    const again = await addDataset(host.helia, 'mnist:1000', { name: 'mnist', license: 'CC-BY-SA-3.0', shards: 4, provide: false })
    assert.equal(one.cid.toString(), again.cid.toString(), 'same input, same dataset CID')
    const format = DatasetFormat.parse(one.manifest.format)
    assert.equal(format.kind, 'csv')
    assert.ok(format.kind === 'csv' && format.columns.length === 785 && format.numClasses === 10 && format.label === 'label')
    const rows = Buffer.concat(await shardsOf(one.cid)).toString().trimEnd().split('\n')
    assert.equal(rows.length, 1000)
    assert.deepEqual(rows.slice(0, 10).map(r => Number(r.split(',')[0])), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert.ok(rows.every(r => r.split(',').length === 785 && r.split(',').every(v => Number(v) >= 0 && Number(v) <= 255)))
    assert.deepEqual(Buffer.concat(await shardsOf(one.cid)), Buffer.from(mnistCsv({ count: 1000 }).bytes))
  })

  it('JSON Lines: one object per line, features and label found, shards split between lines', async () => {
    const path = join(dir, 'points.jsonl')
    const lines = Array.from({ length: 99 }, (_, i) => JSON.stringify({ x: [i, i * 2, i % 7], label: i % 3 }))
    await writeFile(path, lines.join('\n') + '\n')
    const added = await addDataset(host.helia, path, { name: 'points', license: 'CC0-1.0', shards: 5, provide: false })
    assert.deepEqual(added.manifest.format, { kind: 'jsonl', features: 'x', label: 'label', numClasses: 3, featureScale: 1 })
    assert.equal(added.manifest.schema.features, 3)
    const shards = await shardsOf(added.cid)
    assert.equal(shards.length, 5)
    for (const s of shards) assert.ok(s.toString().endsWith('\n'))
    assert.equal(Buffer.concat(shards).toString(), await readFile(path, 'utf-8'))
  })

  it('raw text: shards break only after a line break; CSV rows must match the header', async () => {
    const path = join(dir, 'book.txt')
    const text = Array.from({ length: 300 }, (_, i) => `Sentence ${i} — déjà vu.`).join('\n') + '\n'
    await writeFile(path, text)
    const added = await addDataset(host.helia, path, { name: 'book', license: 'CC0-1.0', shardBytes: 1000, provide: false })
    assert.ok(added.manifest.shards.length > 5)
    const shards = await shardsOf(added.cid)
    for (const s of shards) assert.ok(s.byteLength <= 1000 && s.toString().endsWith('\n'))
    assert.equal(Buffer.concat(shards).toString(), text)

    const bad = join(dir, 'bad.csv')
    await writeFile(bad, 'a,b,label\n1,2,0\n1,2\n')
    await assert.rejects(addDataset(host.helia, bad, { name: 'bad', license: 'x', provide: false }), /line 3 has 2 fields/)
  })

  it('an image folder of PGM files (one subfolder per class) becomes image-records', async () => {
    const root = join(dir, 'images')
    for (const [c, cls] of ['cat', 'dog'].entries()) {
      await mkdir(join(root, cls), { recursive: true })
      for (let i = 0; i < 3; i++) {
        const pixels = new Uint8Array(4 * 5).fill(c * 100 + i)
        await writeFile(join(root, cls, `${i}.pgm`), encodeNetpbm({ width: 5, height: 4, channels: 1, pixels }))
      }
    }
    await writeFile(join(root, 'dog', 'notes.txt'), 'ignored')
    const added = await addDataset(host.helia, root, { name: 'pets', license: 'CC0-1.0', shards: 2, provide: false })
    assert.deepEqual(added.manifest.format, { kind: 'image-records', classes: ['cat', 'dog'], shape: [4, 5, 1], featureScale: 1 / 255 })
    const all = Buffer.concat(await shardsOf(added.cid))
    assert.equal(all.byteLength, 6 * 21)
    assert.deepEqual([...Array(6).keys()].map(i => [all[i * 21], all[i * 21 + 1]]), [[0, 0], [0, 1], [0, 2], [1, 100], [1, 101], [1, 102]])
    assert.throws(() => decodeNetpbm(Buffer.from('\x89PNG....')), UnsupportedInputError)
  })

  it('manifests are validated: a dag-cbor object that is not a dataset is refused with its CID', async () => {
    const added = await addDataset(host.helia, 'mnist:50', { name: 'tiny', license: 'CC0-1.0', shards: 2, provide: false })
    const value = dagCbor.decode(dagCbor.encode(added.manifest)) as any
    assert.doesNotThrow(() => parseDatasetManifest(value))
    assert.throws(() => parseDatasetManifest({ ...value, totalBytes: 1 }), InvalidMessageError)
    assert.throws(() => parseDatasetManifest({ ...value, shards: [{ ...value.shards[0], cid: 'bafy-not-a-link' }] }), InvalidMessageError)
    assert.throws(() => decodeDatasetManifest(added.cid, dagCbor.encode({ hello: 'world' })), (err: Error) => err instanceof InvalidContentError && err.message.includes(added.cid.toString()))
    assert.throws(() => parseCheckpointManifest({ type: 'nearai/checkpoint', version: 1, job: 'j', round: 0, parent: null, metrics: {}, model: { path: '../model.json', bytes: 1, sha256: '0'.repeat(64) }, weights: { sha256: '0'.repeat(64), bytes: 0, files: [] }, totalBytes: 1 }), InvalidMessageError)
  })
})
