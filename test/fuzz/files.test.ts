/**
 * Fuzzing the CLI's file inputs and the manifests that arrive from IPFS: job specs (`job-store.ts`'s parser
 * over `node/training/job-spec.ts`), dataset files through the importers (`node/storage/importers`: CSV,
 * JSON Lines, text, netpbm images), CAR files (`node/storage/car.ts`), dataset manifests (dag-cbor,
 * `protocol/dataset-manifest.ts`) and checkpoint manifests (`protocol/checkpoint-manifest.ts`). Each input
 * either gives a valid value within the bounds or is refused with the module's named error.
 */
import assert from 'node:assert/strict'
import { mkdtemp, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { openHomeStore, type HomeStore } from '../../node/peer/home-store.ts'
import { parseJobSpecJson } from '../../node/job/job-store.ts'
import { InvalidSpecError } from '../../node/training/model-spec.ts'
import { JOB_SPEC_LIMITS } from '../../node/training/job-spec.ts'
import { addDataset, decodeDatasetManifest } from '../../node/storage/datasets.ts'
import { exportCar, importCar } from '../../node/storage/car.ts'
import { decodeNetpbm, encodeNetpbm } from '../../node/storage/importers/netpbm.ts'
import { HashMismatchError, InvalidContentError, StorageError, UnsupportedInputError } from '../../node/storage/errors.ts'
import { MAX_CAR_SECTION_BYTES } from '../../node/storage/limits.ts'
import { MAX_SHARD_BYTES } from '../../protocol/dataset-manifest.ts'
import { decodeCheckpointManifest, MAX_CHECKPOINT_MANIFEST_BYTES } from '../../protocol/checkpoint-manifest.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { MAX_ROUND_SAMPLES } from '../../protocol/allreduce.ts'
import { removeDir } from '../helpers/temp-dir.ts'
import { fuzzTimeout, hostileBytes, hostileJson, parsesOrRefuses, parsesOrRefusesAsync, runs } from './fuzz.ts'

const decoder = new TextDecoder()

describe('fuzz: file inputs and manifests', function () {
  this.timeout(fuzzTimeout(180_000))
  let dir: string
  let store: HomeStore
  let file = 0
  const next = (ext: string): string => join(dir, `input-${file++}${ext}`)

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-fuzz-'))
    store = await openHomeStore(join(dir, 'home'))
  })
  after(async () => { await store.close(); await removeDir(dir) })

  it('job spec files: a valid spec within every bound, or InvalidSpecError', () => {
    const valid = {
      id: 'fuzz', dataset: 'bafyreib', evalDataset: 'bafyreic', model: { kind: 'mlp', inputs: 784, hidden: [64], classes: 10 }, minPeers: 2, rounds: 5,
      inner: { steps: 10, lr: 0.001, weightDecay: 0.01, batchSize: 32 }, outer: { lr: 0.7, momentum: 0.9, nesterov: true }, codec: 'fp16', checkpointEvery: 5, seed: 1, eval: { every: 1, maxSamples: 100 }
    }
    const nested = fc.oneof(
      hostileJson(valid, { oversize: 300_000 }),
      hostileJson(valid.inner).map(inner => ({ ...valid, inner: safeJson(inner) })).map(v => new TextEncoder().encode(JSON.stringify(v))),
      hostileJson(valid.model).map(model => ({ ...valid, model: safeJson(model) })).map(v => new TextEncoder().encode(JSON.stringify(v))),
      hostileJson(valid.eval).map(e => ({ ...valid, eval: safeJson(e) })).map(v => new TextEncoder().encode(JSON.stringify(v)))
    )
    fc.assert(fc.property(nested, (bytes) => {
      const spec = parsesOrRefuses(() => parseJobSpecJson(decoder.decode(bytes), 'fuzz.json'), [InvalidSpecError], decoder.decode(bytes))
      if (spec == null) return
      assert.ok(spec.rounds <= JOB_SPEC_LIMITS.rounds && spec.inner.steps <= JOB_SPEC_LIMITS.innerSteps && spec.inner.batchSize <= JOB_SPEC_LIMITS.batchSize)
      assert.ok(spec.inner.steps * spec.inner.batchSize <= MAX_ROUND_SAMPLES)
      assert.ok(spec.eval.maxSamples <= JOB_SPEC_LIMITS.evalMaxSamples)
      for (const x of [spec.inner.lr, spec.outer.lr, spec.inner.weightDecay, spec.outer.momentum]) assert.ok(Number.isFinite(x))
    }), runs())
  })

  it('dataset files (CSV, JSON Lines, text): imported within the bounds, or UnsupportedInputError / InvalidMessageError', async () => {
    const csv = 'a,b,label\n1,2,0\n3,4,1\n5,6,1\n'
    const jsonl = '{"x":[1,2],"label":0}\n{"x":[3,4],"label":1}\n'
    const text = 'hello world\nsecond line\n'
    const inputs = fc.oneof(
      hostileBytes(Buffer.from(csv)).map(b => ({ ext: '.csv', bytes: b })),
      fc.array(fc.oneof(fc.constant('1'), fc.constant('-1'), fc.constant('1e999'), fc.constant('1e300'), fc.constant(''), fc.constant('x'), fc.constant('"q,"'), fc.constant('0.5')), { minLength: 3, maxLength: 3 })
        .map(row => ({ ext: '.csv', bytes: Buffer.from(`a,b,label\n1,2,0\n${row.join(',')}\n`) })),
      hostileBytes(Buffer.from(jsonl)).map(b => ({ ext: '.jsonl', bytes: b })),
      fc.jsonValue().map(v => ({ ext: '.jsonl', bytes: Buffer.from(`{"x":[1,2],"label":0}\n${JSON.stringify(v)}\n`) })),
      hostileBytes(Buffer.from(text)).map(b => ({ ext: '.txt', bytes: b }))
    )
    await fc.assert(fc.asyncProperty(inputs, async ({ ext, bytes }) => {
      const path = next(ext)
      await writeFile(path, bytes)
      const added = await parsesOrRefusesAsync(async () => await addDataset(store.helia, path, { name: 'fuzz', license: 'CC0', provide: false }), [UnsupportedInputError, InvalidMessageError], decoder.decode(bytes))
      if (added == null) return
      assert.ok(added.manifest.totalBytes <= bytes.byteLength)
      for (const s of added.manifest.shards) assert.ok(s.bytes <= MAX_SHARD_BYTES)
      // Replayed: importing the same file again names the same dataset.
      const again = await addDataset(store.helia, path, { name: 'fuzz', license: 'CC0', provide: false })
      assert.equal(again.cid.toString(), added.cid.toString())
    }), runs(0.5))
  })

  it('a CSV row that is not UTF-8 is refused with UnsupportedInputError naming the line (found by fuzzing: it was a TypeError)', async () => {
    const path = next('.csv')
    await writeFile(path, Buffer.concat([Buffer.from('a,b,label\n1,2,0\n'), Buffer.from([0x80]), Buffer.from(',2,1\n')]))
    await assert.rejects(addDataset(store.helia, path, { name: 'bad', license: 'CC0', provide: false }), (err: Error) => err instanceof UnsupportedInputError && /line 3 is not valid UTF-8/.test(err.message))
  })

  it('netpbm images: decoded within the bounds, or UnsupportedInputError', () => {
    const image = encodeNetpbm({ width: 3, height: 2, channels: 1, pixels: Uint8Array.of(1, 2, 3, 4, 5, 6) })
    const headers = fc.tuple(fc.constantFrom('P5', 'P6', 'P4', ''), fc.constantFrom('3', '0', '-1', '1e9', '65537', 'x', '4294967296'), fc.constantFrom('2', '0', '1e9', '99999'), fc.constantFrom('255', '0', '256', '65535', '1'))
      .map(([m, w, h, max]) => Buffer.concat([Buffer.from(`${m}\n${w} ${h}\n${max}\n`), Buffer.alloc(12, 7)]))
    fc.assert(fc.property(fc.oneof(hostileBytes(image), headers), (bytes) => {
      const img = parsesOrRefuses(() => decodeNetpbm(bytes, 'fuzz.pgm'), [UnsupportedInputError], bytes)
      if (img != null) assert.equal(img.pixels.byteLength, img.width * img.height * img.channels)
    }), runs())
  })

  it('CAR files: truncated, bit-flipped, padded and random ones are refused with a storage error; the valid one imports', async () => {
    const csvPath = next('.csv')
    await writeFile(csvPath, 'a,b,label\n' + Array.from({ length: 200 }, (_, i) => `${i},${i * 2},${i % 2}`).join('\n') + '\n')
    const added = await addDataset(store.helia, csvPath, { name: 'car', license: 'CC0', provide: false, shards: 2 })
    const carPath = next('.car')
    await exportCar(store.helia, added.cid, carPath, { offline: true })
    const valid = new Uint8Array(await (await import('node:fs/promises')).readFile(carPath))
    // A fresh store for imports, so a CAR that is missing blocks cannot borrow them from the export's store.
    const target = await openHomeStore(join(dir, 'import-home'))
    try {
      await fc.assert(fc.asyncProperty(fc.oneof(hostileBytes(valid), fc.constant(valid)), async (bytes) => {
        const path = next('.car')
        await writeFile(path, bytes)
        const imported = await parsesOrRefusesAsync(async () => await importCar(target.helia, path), [StorageError], Buffer.from(bytes.subarray(0, 64)).toString('hex'))
        if (imported != null) assert.ok(imported.bytes <= bytes.byteLength)
      }), runs(0.5))
    } finally {
      await target.close()
    }
  })

  it('a CAR announcing a block over MAX_CAR_SECTION_BYTES is refused before the block is read (the CAR decoder would buffer all of it)', async () => {
    const csvPath = next('.csv')
    await writeFile(csvPath, 'a,b,label\n1,2,0\n3,4,1\n')
    const added = await addDataset(store.helia, csvPath, { name: 'big', license: 'CC0', provide: false })
    const carPath = next('.car')
    await exportCar(store.helia, added.cid, carPath, { offline: true })
    const valid = Buffer.from(await (await import('node:fs/promises')).readFile(carPath))
    const headerLength = valid[0] // < 128: a one-byte varint
    // The first section's length replaced by 1 GiB (a 5-byte varint), and 3 MiB after it that the decoder would buffer.
    const huge = Buffer.concat([valid.subarray(0, 1 + headerLength), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x04]), valid.subarray(1 + headerLength + 1), Buffer.alloc(3 * 1024 * 1024)])
    const path = next('.car')
    await writeFile(path, huge)
    await assert.rejects(importCar(store.helia, path), (err: Error) => err instanceof InvalidContentError && /announces 1 GiB, over the limit of 2\.0 MiB \(2097280 bytes\)/.test(err.message) && err.message.includes('MAX_CAR_SECTION_BYTES'))
    assert.ok(MAX_CAR_SECTION_BYTES > 2 * 1024 * 1024)
  })

  it('a CAR block hashed with a multihash this node cannot verify is an InvalidContentError (found by fuzzing: an UnknownHashAlgorithmError)', async () => {
    const { CarWriter } = await import('@ipld/car/writer')
    const { create } = await import('multiformats/hashes/digest')
    const bytes = new TextEncoder().encode('hello')
    const odd = CID.createV1(0x55, create(0x20, new Uint8Array(32)))
    const { writer, out } = CarWriter.create([odd])
    const chunks: Uint8Array[] = []
    const collecting = (async () => { for await (const c of out) chunks.push(c) })()
    await writer.put({ cid: odd, bytes })
    await writer.close()
    await collecting
    const path = next('.car')
    await writeFile(path, Buffer.concat(chunks))
    await assert.rejects(importCar(store.helia, path), (err: Error) => err instanceof InvalidContentError && /multihash 0x20, which this node cannot verify/.test(err.message))
  })

  it('dataset manifests (dag-cbor from the network): a valid manifest within the bounds, or InvalidContentError', async () => {
    const shardCid = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    const manifest = {
      type: 'nearai/dataset', version: 1, name: 'm', license: 'CC0', format: { kind: 'csv', columns: ['a', 'label'], label: 'label', numClasses: 2, featureScale: 1 },
      schema: { sample: 'csv-row', features: 1, numClasses: 2 }, totalBytes: 20, totalSamples: 4, shards: [{ cid: shardCid, bytes: 20, samples: 4, sha256: 'ab'.repeat(32) }]
    }
    const encoded = dagCbor.encode(manifest)
    const cid = CID.createV1(dagCbor.code, await sha256.digest(encoded))
    const extreme = fc.constantFrom(-1, 0, 2 ** 53, 1e300, 0.5, MAX_SHARD_BYTES + 1, 2 ** 31)
    const mutated = fc.oneof(
      hostileBytes(encoded),
      fc.tuple(fc.constantFrom('totalBytes', 'totalSamples'), extreme).map(([k, v]) => dagCbor.encode({ ...manifest, [k]: v })),
      fc.tuple(fc.constantFrom('bytes', 'samples'), extreme).map(([k, v]) => dagCbor.encode({ ...manifest, shards: [{ ...manifest.shards[0], [k]: v }] })),
      fc.tuple(fc.constantFrom(...Object.keys(manifest)), fc.jsonValue()).map(([k, v]) => { try { return dagCbor.encode({ ...manifest, [k]: v }) } catch { return encoded.subarray(0, 10) } })
    )
    fc.assert(fc.property(mutated, (bytes) => {
      const m = parsesOrRefuses(() => decodeDatasetManifest(cid, bytes), [InvalidContentError], Buffer.from(bytes).toString('hex').slice(0, 200))
      if (m != null) for (const s of m.shards) assert.ok(s.bytes <= MAX_SHARD_BYTES && Number.isSafeInteger(s.samples))
    }), runs())
  })

  it('checkpoint manifests: a valid manifest within the bounds, or InvalidMessageError', () => {
    const manifest = {
      type: 'nearai/checkpoint', version: 2, job: 'j', round: 3, parent: null, metrics: { samples: 10 },
      model: { path: 'model.json', bytes: 100, sha256: 'ab'.repeat(32) },
      weights: { sha256: 'cd'.repeat(32), bytes: 400, files: [{ path: 'weights.bin', bytes: 400, sha256: 'ef'.repeat(32) }] },
      extraFiles: [], contributions: [{ peer: '12D3KooWA1111111111111111111111111111111111111111111', samples: 10 }], totalBytes: 500
    }
    fc.assert(fc.property(hostileJson(manifest, { oversize: MAX_CHECKPOINT_MANIFEST_BYTES }), (bytes) => {
      const m = parsesOrRefuses(() => decodeCheckpointManifest(bytes), [InvalidMessageError], decoder.decode(bytes))
      if (m != null) {
        assert.ok(Number.isSafeInteger(m.totalBytes) && m.totalBytes >= 0)
        for (const f of m.weights.files) assert.ok(!f.path.includes('/') && !f.path.startsWith('.'))
      }
    }), runs())
  })
})

function safeJson (bytes: Uint8Array): unknown {
  try { return JSON.parse(decoder.decode(bytes)) } catch { return decoder.decode(bytes) }
}

export { mkdir, HashMismatchError }
