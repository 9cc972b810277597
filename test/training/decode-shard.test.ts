import assert from 'node:assert/strict'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Host } from '../../node/network/host.ts'
import { addDataset, getDataset } from '../../node/storage/datasets.ts'
import { csvSource, jsonLinesSource, textSource } from '../../node/storage/importers/lines.ts'
import { MNIST_FORMAT, mnistCsv } from '../../node/storage/importers/mnist.ts'
import { encodeNetpbm, imageFolderSource } from '../../node/storage/importers/netpbm.ts'
import type { SampleSource } from '../../node/storage/importers/source.ts'
import { decodeShard, decodeTokens, encodeText, textVocabSize } from '../../node/training/data/decode-shard.ts'
import type { DatasetFormat } from '../../protocol/dataset-format.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { startHost, stopAll } from '../storage/helpers.ts'
import { removeDir } from '../helpers/temp-dir.ts'

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

async function allBytes (source: SampleSource): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const chunk of source.read(0, source.totalBytes)) parts.push(chunk)
  return new Uint8Array(Buffer.concat(parts))
}

/** Asserts that decoding throws an InvalidMessageError whose message matches `pattern`. */
function rejects (format: DatasetFormat, bytes: Uint8Array, pattern: RegExp, options = {}): void {
  assert.throws(() => decodeShard(format, bytes, options), (err: Error) => {
    assert.ok(err instanceof InvalidMessageError, `expected an InvalidMessageError, got ${err.name}: ${err.message}`)
    assert.match(err.message, pattern)
    return true
  })
}

describe('training: decoding dataset shards', function () {
  this.timeout(60_000)
  let dir: string

  before(async () => { dir = await mkdtemp(join(tmpdir(), 'nearai-decode-')) })
  after(async () => { await removeDir(dir) })

  it('csv: importer rows (CRLF, blank lines) decode with the label column and the feature scale', async () => {
    const path = join(dir, 'points.csv')
    await writeFile(path, 'f0,label,f1\r\n10,1,20\r\n\r\n30,0,40\r\n50,2,60\r\n')
    const source = await csvSource(path, { featureScale: 0.1 })
    const s = decodeShard(source.format, await allBytes(source), { samples: 3 })
    assert.equal(s.count, 3)
    assert.deepEqual(Array.from(s.y), [1, 0, 2])
    assert.deepEqual(Array.from(s.x).map(v => Math.round(v * 10) / 10), [1, 2, 3, 4, 5, 6])
    assert.deepEqual(s.featureShape, [2])
    assert.equal(s.numClasses, 3)
    assert.equal(s.labelShape, undefined)
  })

  it('csv: MNIST rows decode to [28, 28, 1] images in [0, 1], labels interleaved by class', () => {
    const { bytes } = mnistCsv({ count: 20 })
    const s = decodeShard(MNIST_FORMAT, bytes)
    assert.equal(s.count, 20)
    assert.deepEqual(s.featureShape, [28, 28, 1])
    assert.deepEqual(Array.from(s.y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert.equal(s.x.length, 20 * 784)
    assert.ok(s.x.every(v => v >= 0 && v <= 1) && s.x.some(v => v > 0.9))
  })

  it('jsonl: the features array and the label field the importer found', async () => {
    const path = join(dir, 'points.jsonl')
    await writeFile(path, '{"pixels":[1,2,3,4],"y":1}\n{"pixels":[5,6,7,8],"y":0}\n  \n{"pixels":[9,10,11,12],"y":3}\n')
    const source = await jsonLinesSource(path, { shape: [2, 2], featureScale: 0.5 })
    const s = decodeShard(source.format, await allBytes(source))
    assert.equal(s.count, 3)
    assert.deepEqual(Array.from(s.y), [1, 0, 3])
    assert.deepEqual(Array.from(s.x), [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6])
    assert.deepEqual(s.featureShape, [2, 2])
    assert.equal(s.numClasses, 4)
  })

  it('image-records: netpbm folders become label + pixels scaled by 1/255', async () => {
    const root = join(dir, 'images')
    for (const [c, cls] of ['cat', 'dog', 'emu'].entries()) {
      await mkdir(join(root, cls), { recursive: true })
      for (let i = 0; i < 2; i++) {
        const pixels = Uint8Array.from({ length: 2 * 3 * 3 }, (_, k) => (c * 50 + i * 10 + k) % 256)
        await writeFile(join(root, cls, `${i}.ppm`), encodeNetpbm({ width: 3, height: 2, channels: 3, pixels }))
      }
    }
    const source = await imageFolderSource(root)
    const s = decodeShard(source.format, await allBytes(source), { samples: 6 })
    assert.equal(s.count, 6)
    assert.deepEqual(s.featureShape, [2, 3, 3])
    assert.equal(s.numClasses, 3)
    assert.deepEqual(Array.from(s.y), [0, 0, 1, 1, 2, 2])
    assert.ok(Math.abs(s.x[18 * 3 + 5] - (50 + 10 + 5) / 255) < 1e-7, 'sample 3 (dog, image 1), pixel 5')
  })

  it('text: windows of context tokens and the next tokens, bytes vocabulary by default', async () => {
    const path = join(dir, 'book.txt')
    await writeFile(path, 'abcdefghij\n')
    const source = await textSource(path)
    const s = decodeShard(source.format, await allBytes(source), { context: 4 })
    const text = (row: number, values: ArrayLike<number>): string => decodeTokens(Array.from(values).slice(row * 4, row * 4 + 4))
    assert.equal(s.numClasses, 256)
    assert.deepEqual(s.featureShape, [4])
    assert.deepEqual(s.labelShape, [4])
    // 11 tokens: windows at 0 and 4, then one flush with the end (6) so that the tail is kept.
    assert.deepEqual([0, 1, 2].map(r => text(r, s.x)), ['abcd', 'efgh', 'ghij'])
    assert.deepEqual([0, 1, 2].map(r => text(r, s.y)), ['bcde', 'fghi', 'hij\n'])
    const overlapping = decodeShard(source.format, await allBytes(source), { context: 4, stride: 1 })
    assert.equal(overlapping.count, 7)

    // A multi-byte character is several byte tokens.
    assert.deepEqual(Array.from(encodeText(utf8('é'))), [0xc3, 0xa9])
  })

  it('text: a vocabulary given as characters, with an optional stand-in for unknown ones', () => {
    const format: DatasetFormat = { kind: 'text', encoding: 'utf-8' }
    const vocab = ' abcé?\n'
    assert.equal(textVocabSize({ vocab }), 7)
    const s = decodeShard(format, utf8('abc é\ncab\n'), { context: 3, vocab })
    assert.equal(s.numClasses, 7)
    assert.deepEqual(Array.from(s.x.subarray(0, 3)), [1, 2, 3])
    assert.equal(decodeTokens(s.y.subarray(0, 3), { vocab }), 'bc ')
    rejects(format, utf8('abcd\n'), /character "d" \(U\+0064\) at character 3 is not in the vocabulary/, { context: 2, vocab })
    const withUnknown = decodeShard(format, utf8('abxd\n'), { context: 4, vocab, unknown: '?' })
    assert.equal(decodeTokens(withUnknown.x, { vocab }), 'ab??')
    assert.throws(() => decodeShard(format, utf8('aab\n'), { context: 2, vocab: 'aab' }), RangeError)
  })

  it('every format decodes the shards addDataset stores, with the counts the manifest declares', async () => {
    let host: Host | undefined
    try {
      host = await startHost()
      await writeFile(join(dir, 'rows.csv'), 'a,b,label\n' + Array.from({ length: 40 }, (_, i) => `${i},${2 * i},${i % 3}`).join('\n') + '\n')
      await writeFile(join(dir, 'rows.jsonl'), Array.from({ length: 40 }, (_, i) => JSON.stringify({ v: [i, -i], label: i % 2 })).join('\n') + '\n')
      await writeFile(join(dir, 'story.txt'), Array.from({ length: 40 }, (_, i) => `line ${i} of the story`).join('\n') + '\n')
      for (const cls of ['a', 'b']) {
        await mkdir(join(dir, 'pgm', cls), { recursive: true })
        for (let i = 0; i < 3; i++) await writeFile(join(dir, 'pgm', cls, `${i}.pgm`), encodeNetpbm({ width: 2, height: 2, channels: 1, pixels: new Uint8Array(4).fill(i) }))
      }
      for (const path of ['rows.csv', 'rows.jsonl', 'pgm', 'story.txt']) {
        const added = await addDataset(host.helia, join(dir, path), { name: path, license: 'CC0-1.0', shards: 3, provide: false })
        const { manifest, shards } = await getDataset(host.helia, added.cid, { offline: true })
        let samples = 0
        for (const shard of shards) {
          const expected = manifest.shards[shard.index].samples
          const s = decodeShard(manifest.format, shard.bytes, { samples: manifest.format.kind === 'text' ? undefined : expected, context: 8 })
          samples += manifest.format.kind === 'text' ? expected : s.count
          assert.ok(s.count > 0 && s.x.length === s.count * s.featureShape.reduce((a, b) => a * b, 1))
          assert.ok(s.y.every(v => v >= 0 && v < s.numClasses))
        }
        assert.equal(samples, manifest.totalSamples, path)
      }
      const jsonl = await addDataset(host.helia, join(dir, 'rows.jsonl'), { name: 'j', license: 'CC0-1.0', shards: 1, provide: false })
      const whole = decodeShard(jsonl.manifest.format, (await getDataset(host.helia, jsonl.cid, { offline: true })).shards[0].bytes)
      assert.deepEqual(Array.from(whole.x.subarray(78)), [39, -39])
    } finally {
      await stopAll([host])
    }
  })

  it('refuses malformed shards and formats with InvalidMessageError naming the problem', () => {
    const csv: DatasetFormat = { kind: 'csv', columns: ['a', 'label'], label: 'label', numClasses: 2, featureScale: 1 }
    rejects(csv, utf8('1,0\n2\n'), /row 1: 1 cells, expected 2/)
    rejects(csv, utf8('1,0\nx,1\n'), /row 1, column a: "x" is not a number/)
    rejects(csv, utf8('1,0\n,1\n'), /row 1, column a: "" is not a number/)
    rejects(csv, utf8('1,5\n'), /label 5 outside \[0, 2\)/)
    rejects(csv, utf8('\n\n'), /csv shard holds no samples/)
    rejects(csv, utf8('1,0\n2,1\n'), /holds 2 samples, its manifest says 3/, { samples: 3 })
    rejects(csv, new Uint8Array([0x31, 0x2c, 0xff, 0x0a]), /not valid UTF-8/)
    rejects({ ...csv, shape: [3] }, utf8('1,0\n'), /shape \[3\] does not hold the 1 feature columns/)

    const jsonl: DatasetFormat = { kind: 'jsonl', features: 'x', label: 'y', numClasses: 3, featureScale: 1 }
    rejects(jsonl, utf8('{"x":[1],"y":0}\n{"x":[1],\n'), /line 1: not JSON/)
    rejects(jsonl, utf8('[1,2]\n'), /line 0: not a JSON object/)
    rejects(jsonl, utf8('{"x":[1,"2"],"y":0}\n'), /line 0: "x" is not an array of finite numbers/)
    rejects(jsonl, utf8('{"x":[1],"y":3}\n'), /line 0: "y" is 3, not an integer in \[0, 3\)/)
    rejects(jsonl, utf8('{"x":[1],"y":0.5}\n'), /not an integer/)
    rejects(jsonl, utf8('{"x":[1,2],"y":0}\n{"x":[1],"y":1}\n'), /line 1: 1 features, expected 2/)

    const images: DatasetFormat = { kind: 'image-records', classes: ['a', 'b'], shape: [2, 2, 1], featureScale: 1 / 255 }
    rejects(images, new Uint8Array(9), /9 bytes is not a whole number of 5-byte records/)
    rejects(images, Uint8Array.from([0, 1, 2, 3, 4, 2, 1, 2, 3, 4]), /record 1: label 2 outside the 2 classes/)
    rejects(images, new Uint8Array(0), /holds no samples/)

    const text: DatasetFormat = { kind: 'text', encoding: 'utf-8' }
    rejects(text, Uint8Array.from([0x61, 0x62, 0xc3, 0x28, 0x0a]), /text shard is not valid UTF-8/, { context: 2 })
    rejects(text, utf8('abc\n'), /4 tokens, fewer than one window of context 8/, { context: 8 })
    assert.throws(() => decodeShard(text, utf8('abc\n')), (err: Error) => err instanceof RangeError && /context option/.test(err.message))

    rejects({ kind: 'parquet' } as unknown as DatasetFormat, utf8('x'), /unknown dataset format "parquet": this peer decodes csv, jsonl, text, image-records/)
    rejects({ kind: 'csv', columns: ['a'], label: 'a', numClasses: 2 } as unknown as DatasetFormat, utf8('1\n'), /csv dataset format: columns: /)
    rejects({ ...csv, label: 'b' }, utf8('1,0\n'), /label column "b" is not among the columns/)
  })
})
