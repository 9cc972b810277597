/**
 * What the update checks and the robust combine rules cost a reducer, against the weighted mean (what every job
 * ran before), in the same run, on the same contributions: one part of `--mb` MB of float32 per member, from
 * `--peers` members, reduced through the plaintext aggregator (blocks of COMBINE_BLOCK, the identity codec).
 *
 *   node --import tsx benchmarks/robust-combine.ts                      # 4 MB parts (1M floats), 5 members, best of 7
 *   node --import tsx benchmarks/robust-combine.ts --mb 16 --peers 8 --reps 3
 *
 * Prints each variant's time per part and its ratio to the weighted mean's.
 */
import { parseArgs } from 'node:util'
import { plaintextAggregator, weightedMean, type PartAggregator, type WireContribution } from '../node/allreduce/combine.ts'
import { coordinateMedian, trimmedMean } from '../node/allreduce/robust-rules.ts'
import { checkedAggregator } from '../node/allreduce/update-checks.ts'
import { noneCodec } from '../node/compression/index.ts'

const { values } = parseArgs({ options: { mb: { type: 'string', default: '4' }, peers: { type: 'string', default: '5' }, reps: { type: 'string', default: '7' } } })
const elements = Math.round(Number(values.mb) * 1024 * 1024 / 4)
const peers = Number(values.peers)
const reps = Number(values.reps)
if (!(elements > 0) || !(peers >= 1 && peers <= 256) || !(reps >= 1)) throw new RangeError('bad --mb, --peers or --reps')

let seed = 12345
const rand = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32 * 2 - 1 }
const members = Array.from({ length: peers }, (_v, i) => `peer-${String(i).padStart(3, '0')}`)
const contributions: Array<WireContribution<Float32Array>> = members.map((peer, i) => ({ peer, weight: 640 + i, value: Float32Array.from({ length: elements }, rand) }))
const context = { job: 'bench', round: 0, members, part: 0 }

const codec = noneCodec()
const variants: Array<[string, PartAggregator<Float32Array>]> = [
  ['weighted mean', plaintextAggregator(codec, weightedMean)],
  ['checks + weighted mean', checkedAggregator(plaintextAggregator(codec, weightedMean), { maxNormRatio: 5, sampleBound: () => 1e9 })],
  ['trimmed mean (k=1)', plaintextAggregator(codec, trimmedMean(1))],
  ['checks + trimmed mean (k=1)', checkedAggregator(plaintextAggregator(codec, trimmedMean(1)), { maxNormRatio: 5, sampleBound: () => 1e9 })],
  ['median', plaintextAggregator(codec, coordinateMedian)]
]

console.log(`part of ${elements} floats (${values.mb} MB) from ${peers} members, best of ${reps} (variants interleaved, after one warm-up pass each)`)
for (const [, aggregator] of variants) await aggregator.reduce(contributions, elements, undefined, context)
const best = variants.map(() => Infinity)
for (let r = 0; r < reps; r++) {
  for (const [v, [, aggregator]] of variants.entries()) {
    const started = performance.now()
    await aggregator.reduce(contributions, elements, undefined, context)
    best[v] = Math.min(best[v], performance.now() - started)
  }
}
variants.forEach(([name], v) => {
  console.log(`${name.padEnd(30)} ${best[v].toFixed(1).padStart(8)} ms   ${(best[v] / best[0]).toFixed(2)}x the weighted mean   ${(elements * peers * 4 / 1e6 / (best[v] / 1000)).toFixed(0)} MB/s of contributions`)
})
