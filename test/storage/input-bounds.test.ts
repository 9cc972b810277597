/**
 * Every size the storage layer takes from a manifest, a file or the user has an upper bound, checked before
 * the bytes are fetched or allocated, with an error naming the bound (and the flag that raises it).
 */
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { openHomeStore, type HomeStore } from '../../node/peer/home-store.ts'
import { addDataset, decodeDatasetManifest, getDataset, planShards } from '../../node/storage/datasets.ts'
import { readVerifiedFile } from '../../node/storage/fetch.ts'
import { ContentTooLargeError, InvalidContentError, UnsupportedInputError } from '../../node/storage/errors.ts'
import { DEFAULT_DATASET_GET_MAX_BYTES, MAX_IMPORT_SAMPLE_BYTES } from '../../node/storage/limits.ts'
import { SampleOffsets } from '../../node/storage/importers/source.ts'
import { loadEvaluationSamples } from '../../node/job/shard-data.ts'
import { parseJobSpec } from '../../node/training/job-spec.ts'
import { MAX_SHARD_BYTES } from '../../protocol/dataset-manifest.ts'
import { runCli } from '../helpers/cli.ts'
import { byteSize } from '../../node/cli/arg-parsers.ts'
import { removeDir } from '../helpers/temp-dir.ts'

const SHA = 'ab'.repeat(32)
const LEAF = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')

function manifestWith (shards: Array<{ bytes: number, samples: number }>): Record<string, unknown> {
  return {
    type: 'nearai/dataset', version: 1, name: 'm', license: 'CC0',
    format: { kind: 'csv', columns: ['a', 'b', 'label'], label: 'label', numClasses: 2, featureScale: 1 },
    schema: { sample: 'csv-row', features: 2, numClasses: 2 },
    totalBytes: shards.reduce((s, x) => s + x.bytes, 0), totalSamples: shards.reduce((s, x) => s + x.samples, 0),
    shards: shards.map(s => ({ cid: LEAF, sha256: SHA, ...s }))
  }
}

describe('input bounds: storage', function () {
  this.timeout(120_000)
  let dir: string
  let store: HomeStore

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-bounds-'))
    store = await openHomeStore(join(dir, 'home'))
  })
  after(async () => { await store.close(); await removeDir(dir) })

  it('a manifest declaring a shard over MAX_SHARD_BYTES is refused when it is decoded, naming the bound', async () => {
    const bytes = dagCbor.encode(manifestWith([{ bytes: MAX_SHARD_BYTES + 1, samples: 10 }]))
    const cid = CID.createV1(dagCbor.code, await sha256.digest(bytes))
    assert.throws(() => decodeDatasetManifest(cid, bytes), (err: Error) => err instanceof InvalidContentError && err.message.includes('MAX_SHARD_BYTES'))
    assert.ok(decodeDatasetManifest(cid, dagCbor.encode(manifestWith([{ bytes: MAX_SHARD_BYTES, samples: 10 }]))), 'the bound itself is accepted')
  })

  it('a verified read refuses a declared size it could not hold before allocating anything', async () => {
    const state = { received: 0 }
    // 2^40 bytes: allocating it would throw a RangeError (or exhaust memory); it is refused by name instead.
    await assert.rejects(readVerifiedFile(store.helia, LEAF, { signal: AbortSignal.timeout(5000), state, bytes: 2 ** 40, what: 'shard 0', offline: true }),
      (err: Error) => err instanceof ContentTooLargeError && /1024 GiB exceeds the limit of/.test(err.message))
    await assert.rejects(readVerifiedFile(store.helia, LEAF, { signal: AbortSignal.timeout(5000), state, bytes: -1, what: 'shard 0', offline: true }), InvalidContentError)
    assert.equal(state.received, 0)
  })

  it('dataset get refuses more than DEFAULT_DATASET_GET_MAX_BYTES (4 GiB) by default and what --max-bytes says, before fetching a shard', async () => {
    // 20 shards of 256 MiB that exist nowhere: the refusal must come before any fetch.
    const bytes = dagCbor.encode(manifestWith(Array.from({ length: 20 }, () => ({ bytes: MAX_SHARD_BYTES, samples: 1000 }))))
    const cid = CID.createV1(dagCbor.code, await sha256.digest(bytes))
    await store.helia.blockstore.put(cid, bytes)
    assert.equal(DEFAULT_DATASET_GET_MAX_BYTES, 4 * 1024 ** 3)
    await assert.rejects(getDataset(store.helia, cid, { offline: true, timeoutMs: 5000 }),
      (err: Error) => err instanceof ContentTooLargeError && /hold 5 GiB, over the limit of 4 GiB \(--max-bytes/.test(err.message))
    await assert.rejects(getDataset(store.helia, cid, { offline: true, timeoutMs: 5000, maxBytes: 100 * 1024 ** 2, shard: 3 }),
      (err: Error) => err instanceof ContentTooLargeError && /hold 256 MiB, over the limit of 100 MiB/.test(err.message))
  })

  it('the evaluation set reads shards only until eval.maxSamples are in, and at most its byte bound', async () => {
    const csv = join(dir, 'eval.csv')
    await writeFile(csv, 'a,b,label\n' + Array.from({ length: 400 }, (_, i) => `${i % 7},${i % 5},${i % 2}`).join('\n') + '\n')
    const added = await addDataset(store.helia, csv, { name: 'eval', license: 'CC0', provide: false, shards: 4 })
    // The last two shards are gone from this store: a reader that fetched every shard could not finish offline.
    for await (const _ of store.helia.pins.rm(added.cid)) { /* unpinned, so its blocks can go */ }
    for (const s of added.manifest.shards.slice(2)) await store.helia.blockstore.delete(s.cid)
    const spec = parseJobSpec({ id: 'e', dataset: added.cid.toString(), evalDataset: added.cid.toString(), model: { kind: 'mlp', inputs: 2, hidden: [4], classes: 2 }, eval: { maxSamples: 150 } })
    const samples = await loadEvaluationSamples(store.helia, spec, added.cid.toString(), { timeoutMs: 5000 })
    assert.equal(samples.count, 150)
    assert.deepEqual(Array.from(samples.x.subarray(0, 4)), [0, 0, 1, 1], 'the first samples, in the dataset\'s order')
    await assert.rejects(loadEvaluationSamples(store.helia, spec, added.cid.toString(), { timeoutMs: 5000, maxBytes: added.manifest.shards[0].bytes }),
      (err: Error) => err instanceof ContentTooLargeError && /evaluation set .* over the limit of .* \(DEFAULT_EVAL_SET_MAX_BYTES\)/.test(err.message))
  })

  it('an import line past MAX_IMPORT_SAMPLE_BYTES, a shard over MAX_SHARD_BYTES and shardBytes over it are refused by name', async () => {
    const long = join(dir, 'long.txt')
    await writeFile(long, Buffer.alloc(MAX_IMPORT_SAMPLE_BYTES + 2 * 1024 * 1024, 0x61))
    await assert.rejects(addDataset(store.helia, long, { name: 'long', license: 'CC0', provide: false }),
      (err: Error) => err instanceof UnsupportedInputError && /line 1 is longer than 64 MiB, the limit of one sample \(MAX_IMPORT_SAMPLE_BYTES\)/.test(err.message))
    const offsets = new SampleOffsets()
    for (let i = 1; i <= 3; i++) offsets.push(i * 200 * 1024 * 1024)
    assert.throws(() => planShards({ sampleEnds: offsets, totalBytes: 600 * 1024 * 1024 }, { shards: 1 }),
      (err: Error) => err instanceof UnsupportedInputError && /shard 0 would hold 600 MiB, over the limit of 256 MiB .*MAX_SHARD_BYTES/.test(err.message))
    assert.throws(() => planShards({ sampleEnds: offsets, totalBytes: 600 * 1024 * 1024 }, { shardBytes: 1024 ** 3 }),
      (err: Error) => err instanceof UnsupportedInputError && /shardBytes of 1 GiB exceeds the limit of 256 MiB/.test(err.message))
    assert.deepEqual(planShards({ sampleEnds: offsets, totalBytes: 600 * 1024 * 1024 }, { shards: 3 }), [0, 1, 2, 3])
  })

  it('nearai dataset get --max-bytes refuses a dataset over it, naming the limit and the flag', async () => {
    const home = join(dir, 'cli-home')
    assert.equal((await runCli(['--home', home, 'init'])).code, 0)
    const csv = join(dir, 'cli.csv')
    await writeFile(csv, 'a,b,label\n' + Array.from({ length: 100 }, (_, i) => `${i},${i},${i % 2}`).join('\n') + '\n')
    const add = await runCli(['--home', home, '--log-level', 'warn', 'dataset', 'add', csv, '--name', 'c', '--license', 'CC0'])
    assert.equal(add.code, 0, add.stderr)
    const cid = add.stdout.trim()
    const refused = await runCli(['--home', home, '--log-level', 'warn', 'dataset', 'get', cid, '--max-bytes', '100'])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /^nearai: dataset get: dataset \S+: the 1 shard\(s\) asked for hold \d+ bytes, over the limit of 100 bytes \(--max-bytes/m)
    const bad = await runCli(['--home', home, 'dataset', 'get', cid, '--max-bytes', 'lots'])
    assert.match(bad.stderr, /--max-bytes <size>.*expected a size in bytes/)
  })

  it('--max-bytes takes bytes or a size with a unit', () => {
    assert.equal(byteSize('100'), 100)
    assert.equal(byteSize('1MiB'), 1024 ** 2)
    assert.equal(byteSize('8 GiB'), 8 * 1024 ** 3)
    assert.equal(byteSize('1.5GB'), 1.5e9)
    for (const bad of ['', '0', '-1', 'lots', '1 parsec', '1e999']) assert.throws(() => byteSize(bad), /expected a size in bytes/)
  })
})

