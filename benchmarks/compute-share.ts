/**
 * The compute share of a round: how much of a round's wall time a peer spends in its inner steps, for a job
 * of 4 peer processes (`nearai node start --job`, as the demo runs them) training the README's MNIST MLP
 * 784-256-128-10 with fp16 updates, with each overlap mode of the job spec, in the same run on the same
 * bootstrap node and datasets:
 *
 *   none                  train, then reduce, apply, publish, evaluate, in turn (the baseline)
 *   delayed-outer         round t reduced while round t+1 trains in a worker thread
 *   delayed-outer (main)  the same loop with the inner steps on the main thread, yielding to the network
 *                         between steps (NEARAI_TRAINER_THREAD=main): does yielding alone give the overlap?
 *
 * Per round (mean over the peers): training ms (round r's inner steps: the train step's `training` and
 * `trained` log lines), round wall ms (between this peer's consecutive `round` lines; round 0 from its first
 * `training` line), and training/wall: the share of that wall time the peer spent in inner steps of any round
 * (in the overlapped modes, mostly round r+1's). The summary leaves round 0 out (start-up) and compares each
 * mode with `none`.
 *
 *   node --import tsx benchmarks/compute-share.ts
 *   npm run bench:record -- compute-share -- node --import tsx benchmarks/compute-share.ts
 *
 * Environment: NEARAI_BENCH_ROUNDS (8), NEARAI_BENCH_PEERS (4), NEARAI_BENCH_STEPS (inner steps, 50),
 * NEARAI_BENCH_MODES (none,delayed-outer,delayed-outer-main).
 */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { addMnistDatasets, initPeerHome, mnistJobSpec, provideWhenPeered, startLocalBootstrap, startPeerProcess } from '../node/demo/local-network.ts'
import type { LogLine, PeerProcess } from '../node/demo/peer-process.ts'

const env = (k: string, d: number): number => process.env[k] != null ? Number(process.env[k]) : d
const ROUNDS = env('NEARAI_BENCH_ROUNDS', 8)
const PEERS = env('NEARAI_BENCH_PEERS', 4)
const STEPS = env('NEARAI_BENCH_STEPS', 50)
const MODES = (process.env.NEARAI_BENCH_MODES ?? 'none,delayed-outer,delayed-outer-main').split(',') as Mode[]
type Mode = 'none' | 'delayed-outer' | 'delayed-outer-main'

/**
 * Round r's figures at one peer: its wall time runs from the end of round r − 1 (this peer's `round` line; for
 * round 0 the start of its training) to the end of round r; `busyMs` is how much of that time the peer was
 * running inner steps (of any round: in the overlapped modes, round r+1's), so busy/wall is at most 1;
 * `trainingMs` is how long round r's own inner steps took.
 */
interface RoundFigures { round: number, trainingMs: number, busyMs: number, wallMs: number }
interface ModeFigures { mode: Mode, rounds: RoundFigures[], hashesAgree: boolean, accuracy?: number, totalMs: number }

const log = (s: string): void => { process.stderr.write(s + '\n') }
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)

/** One peer's per-round figures from its log lines. */
function perRound (logs: LogLine[]): RoundFigures[] {
  const time = (event: string, r: number): number | undefined => logs.find(l => l.event === event && l.round === r)?.time as number | undefined
  const training: Array<[number, number]> = []
  for (let r = 0; r < ROUNDS; r++) {
    // A round trained twice (a retry after a failed reduce) counts its last, finished training.
    const starts = logs.filter(l => l.event === 'training' && l.round === r).map(l => l.time as number)
    const end = time('trained', r)
    const start = starts.filter(t => end != null && t <= end).at(-1)
    if (start != null && end != null) training.push([start, end])
  }
  const out: RoundFigures[] = []
  let previous = time('training', 0)
  for (let r = 0; r < ROUNDS; r++) {
    const trained = logs.find(l => l.event === 'trained' && l.round === r)
    const done = time('round', r)
    if (trained == null || done == null || previous == null) break
    const from = previous
    const busyMs = sum(training.map(([a, b]) => Math.max(0, Math.min(b, done) - Math.max(a, from))))
    out.push({ round: r, trainingMs: trained.ms as number, busyMs, wallMs: done - from })
    previous = done
  }
  return out
}

async function runMode (mode: Mode, dir: string, bootAddr: string, data: Awaited<ReturnType<typeof addMnistDatasets>>): Promise<ModeFigures> {
  const spec = mnistJobSpec(data, {
    id: `compute-share-${mode}`,
    rounds: ROUNDS,
    inner: { steps: STEPS, lr: 1e-3, weightDecay: 0.01, batchSize: 64 },
    overlap: mode === 'none' ? 'none' : 'delayed-outer'
  })
  const specPath = join(dir, `${spec.id}.json`)
  await writeFile(specPath, JSON.stringify(spec))
  const peers: PeerProcess[] = []
  const started = Date.now()
  try {
    for (let i = 0; i < PEERS; i++) {
      const home = join(dir, `${mode}-peer-${i}`)
      await initPeerHome(home, bootAddr)
      peers.push(startPeerProcess(`${mode}-${i}`, home, specPath, ['--join-wait', '3', '--linger', '5', '--backend', 'wasm'], mode === 'delayed-outer-main' ? { NEARAI_TRAINER_THREAD: 'main' } : undefined))
    }
    for (const p of peers) p.onLog(l => { if (l.event === 'round' && p === peers[0]) log(`  ${mode}: round ${l.round as number} done (${l.peers as number} peers, ${l.ms as number} ms)`) })
    const done = await Promise.all(peers.map(async p => await p.waitFor(l => l.event === 'job-done', 1_200_000, 'job-done')))
    const totalMs = Date.now() - started
    const figures = peers.map(p => perRound(p.logs))
    const rounds: RoundFigures[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const at = figures.map(f => f.find(x => x.round === r)).filter(x => x != null)
      if (at.length === 0) continue
      rounds.push({ round: r, trainingMs: mean(at.map(x => x.trainingMs)), busyMs: mean(at.map(x => x.busyMs)), wallMs: mean(at.map(x => x.wallMs)) })
    }
    return { mode, rounds, hashesAgree: new Set(done.map(d => d.hash)).size === 1, accuracy: done[0].evalAccuracy as number | undefined, totalMs }
  } finally {
    for (const p of peers) p.kill('SIGKILL')
    await Promise.all(peers.map(async p => await p.exited))
  }
}

const dir = await mkdtemp(join(tmpdir(), 'nearai-compute-share-'))
const boot = await startLocalBootstrap(dir, pino({ level: 'silent' }))
const data = await addMnistDatasets(boot, dir, { trainDigits: 8000, shards: 8 })
const provided = provideWhenPeered(boot, data.roots).catch(() => 0)
console.log(`compute share of a round: ${PEERS} peer processes, MNIST MLP 784-256-128-10, fp16, ${STEPS} inner steps of batch 64, ${ROUNDS} rounds per mode; ${availableParallelism()} cores, load ${loadavg().map(l => l.toFixed(2)).join(' ')} at the start`)
const results: ModeFigures[] = []
try {
  for (const mode of MODES) {
    log(`mode ${mode}...`)
    results.push(await runMode(mode, dir, boot.multiaddrs[0].toString(), data))
  }
} finally {
  await provided
  await boot.stop()
}

for (const m of results) {
  console.log(`\n${m.mode}: ${m.hashesAgree ? 'every peer ends with the same weights hash' : 'WEIGHTS HASHES DIFFER'}; final held-out accuracy ${m.accuracy != null ? (m.accuracy * 100).toFixed(2) + '%' : 'n/a'}; job ${(m.totalMs / 1000).toFixed(1)} s`)
  console.log(' round  training ms   wall ms   training in wall   training/wall')
  for (const r of m.rounds) console.log(`${String(r.round).padStart(6)}  ${r.trainingMs.toFixed(0).padStart(11)}  ${r.wallMs.toFixed(0).padStart(8)}  ${r.busyMs.toFixed(0).padStart(16)}  ${(100 * r.busyMs / r.wallMs).toFixed(1).padStart(13)}%`)
}
const figures = (rs: RoundFigures[]): { training: number, wall: number, share: number } =>
  ({ training: mean(rs.map(r => r.trainingMs)), wall: mean(rs.map(r => r.wallMs)), share: sum(rs.map(r => r.busyMs)) / sum(rs.map(r => r.wallMs)) })
// Rounds 1 on: round 0 includes the start-up. Without the last round as well: in an overlapped job the last
// round's reduce has no next round to overlap (the pipeline drains), which a longer job pays once.
const all = (m: ModeFigures): ReturnType<typeof figures> => figures(m.rounds.filter(r => r.round > 0))
const steady = (m: ModeFigures): ReturnType<typeof figures> => figures(m.rounds.filter(r => r.round > 0 && r.round < ROUNDS - 1))
const base = results.find(m => m.mode === 'none')
console.log(`\nsummary, mean over the peers; training/wall: time spent in inner steps / wall time; rounds 1-${ROUNDS - 1} (round 0 includes the start-up), and rounds 1-${ROUNDS - 2} (steady: the last round of an overlapped job has nothing to overlap)`)
console.log(' mode                 training ms   wall ms   training/wall   wall vs none   share vs none   steady wall ms   steady training/wall')
for (const m of results) {
  const s = all(m)
  const b = base != null ? all(base) : undefined
  const st = steady(m)
  console.log(` ${m.mode.padEnd(20)} ${s.training.toFixed(0).padStart(11)}  ${s.wall.toFixed(0).padStart(8)}  ${(100 * s.share).toFixed(1).padStart(13)}%  ${b != null ? (s.wall / b.wall).toFixed(2).padStart(12) + 'x' : 'n/a'.padStart(13)}  ${b != null ? (s.share / b.share).toFixed(2).padStart(13) + 'x' : 'n/a'.padStart(14)}  ${st.wall.toFixed(0).padStart(15)}  ${(100 * st.share).toFixed(1).padStart(20)}%`)
}
if (results.some(m => !m.hashesAgree)) process.exitCode = 1
