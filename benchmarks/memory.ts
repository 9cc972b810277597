/**
 * What writing into fresh memory costs on this machine, against writing into memory already touched: the
 * cost every receiver pays that keeps what it receives in a new array (a fetched shard, a decoded part, an
 * all-reduce result), and the reason the all-reduce reuses its round buffers (node/memory/buffer-pool.ts).
 *
 *   node --import tsx benchmarks/memory.ts [--mb 16] [--reps 20]
 *
 * Three ways to get `mb` MB of data into an array, each timed `reps` times (median, wall and CPU):
 *   fresh:   new Float32Array + set (a new array every time, as code that allocates per round does);
 *   pooled:  a BufferPool's array, given back after each use (what the all-reduce does now);
 *   reused:  the same array every time (the floor: one memcpy).
 * A receiver that keeps its bytes in fresh memory cannot go faster than mb / (fresh ms): the table prints that
 * ceiling in MB/s, to compare with the raw TCP rates of the transport and fetch benchmarks.
 */
import { parseArgs } from 'node:util'
import { BufferPool } from '../node/memory/buffer-pool.ts'

const { values } = parseArgs({ options: { mb: { type: 'string', default: '16' }, reps: { type: 'string', default: '20' } } })
const mb = Number(values.mb)
const reps = Number(values.reps)
if (!(mb > 0 && mb <= 1024) || !(Number.isInteger(reps) && reps > 0 && reps <= 1000)) {
  process.stderr.write('memory: --mb must be in (0, 1024] and --reps an integer in [1, 1000]\n')
  process.exit(2)
}
const n = Math.floor(mb * 1024 * 1024 / 4)
const source = new Float32Array(n)
for (let i = 0; i < n; i++) source[i] = (i % 1000) / 1000

const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

function time (run: () => Float32Array): { wall: number, cpu: number } {
  const walls: number[] = []
  const cpus: number[] = []
  let check = 0
  for (let r = 0; r < reps; r++) {
    const c = cpuMs()
    const t = performance.now()
    const out = run()
    walls.push(performance.now() - t)
    cpus.push(cpuMs() - c)
    check += out[n - 1]
  }
  if (!(check > 0)) throw new Error('the copies did not happen')
  return { wall: median(walls), cpu: median(cpus) }
}

const reused = new Float32Array(n)
const pool = new BufferPool()
const rows: Array<[string, { wall: number, cpu: number }]> = [
  ['fresh (new array each time)', time(() => { const out = new Float32Array(n); out.set(source); return out })],
  ['pooled (BufferPool, given back)', time(() => { const out = pool.floats(n); out.set(source); pool.release(out); return out })],
  ['reused (the same array)', time(() => { reused.set(source); return reused })]
]
const floor = rows[2][1].wall
console.log(`Writing ${mb} MB into an array, median of ${reps} (${process.version}, ${process.platform}/${process.arch})`)
console.log('')
console.log('| into                             | wall ms | CPU ms | ms per MB | vs reused | ceiling MB/s |')
console.log('|----------------------------------|--------:|-------:|----------:|----------:|-------------:|')
for (const [name, t] of rows) {
  console.log(`| ${name.padEnd(32)} | ${t.wall.toFixed(2).padStart(7)} | ${t.cpu.toFixed(1).padStart(6)} | ${(t.wall / mb).toFixed(3).padStart(9)} | ${(t.wall / floor).toFixed(1).padStart(8)}x | ${(mb / (t.wall / 1000)).toFixed(0).padStart(12)} |`)
}
console.log('')
console.log(`fresh memory costs ${(rows[0][1].wall / floor).toFixed(1)}x a copy into touched memory; the pool ${(rows[1][1].wall / floor).toFixed(1)}x`)
