import { writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { addDataset, getDataset, getDatasetManifest } from '../node/storage/datasets.ts'
import { prefetchDags } from '../node/storage/shard-stream/prefetch.ts'
import { startHost, stopAll } from '../test/storage/helpers.ts'
const lines = []; for (let n = 0; n < 64e6; n += 81) lines.push(randomBytes(40).toString('hex'))
await writeFile('/tmp/d.txt', lines.join('\n'))
const boot = await startHost()
const h = await startHost({ bootstrap: boot })
const { cid } = await addDataset(h.helia, '/tmp/d.txt', { name: 'x', license: 'x', format: 'text' })
for (const streams of [1, 2, 4]) {
  const f = await startHost({ bootstrap: boot })
  const m = await getDatasetManifest(f.helia, cid, {})
  let t = performance.now()
  const r = await prefetchDags(f.helia, m.shards.map(s => s.cid), { signal: AbortSignal.timeout(60000), streamsPerHolder: streams })
  const pf = performance.now() - t
  t = performance.now()
  const d = await getDataset(f.helia, cid, { shardStreams: false })
  const t2 = performance.now()
  await getDataset(f.helia, cid, { offline: true })
  console.log('offline read', (performance.now() - t2).toFixed(0))
  const t3 = performance.now()
  await getDataset(f.helia, cid, { shardStreams: false })
  console.log('session read again', (performance.now() - t3).toFixed(0))
  console.log(`streams ${streams}: prefetch ${(r.bytes / 1e6).toFixed(1)} MB in ${pf.toFixed(0)} ms = ${(r.bytes / 1e3 / pf).toFixed(0)} MB/s; read after ${(performance.now() - t).toFixed(0)} ms`)
  await stopAll([f])
}
await stopAll([h, boot])
process.exit(0)
