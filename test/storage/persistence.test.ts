import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { unixfs } from '@helia/unixfs'
import type { Host } from '../../node/network/host.ts'
import { addDataset, getDataset } from '../../node/storage/datasets.ts'
import { exportCar, importCar } from '../../node/storage/car.ts'
import { pinAdd, pinLs, pinnedBytes, pinRm } from '../../node/storage/pins.ts'
import { PublicDatasetKeeper } from '../../node/storage/public-datasets.ts'
import { dagSize } from '../../node/storage/dag.ts'
import { startHost, stopAll, waitFor } from './helpers.ts'
import { removeDir } from '../helpers/temp-dir.ts'

describe('storage: pins, restart, garbage collection, CAR', function () {
  this.timeout(120_000)
  let dir: string
  let boot: Host
  const started: Host[] = []

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-persist-'))
    boot = await startHost()
  })
  after(async () => {
    await stopAll([...started.reverse(), boot])
    await removeDir(dir)
  })

  async function textFile (name: string, lines: number): Promise<string> {
    const path = join(dir, name)
    await writeFile(path, Array.from({ length: lines }, (_, i) => `line ${i} of ${name}: ${'x'.repeat(i % 97)}`).join('\n') + '\n')
    return path
  }

  it('keeps a pinned dataset, and serves it, after a restart with the same dataDir and key; gc removes what is not pinned', async () => {
    const dataDir = join(dir, 'node-a')
    const privateKey = await generateKeyPair('Ed25519')
    let a = await startHost({ bootstrap: boot, dataDir, privateKey })
    started.push(a)
    const added = await addDataset(a.helia, await textFile('corpus.txt', 5000), { name: 'corpus', license: 'CC0-1.0', shardBytes: 64 * 1024 })
    assert.ok(added.manifest.shards.length > 2)
    const loose = await unixfs(a.helia).addBytes(new TextEncoder().encode('not pinned'))
    const peerId = a.peerId
    await a.stop()
    started.pop()

    a = await startHost({ bootstrap: boot, dataDir, privateKey })
    started.push(a)
    assert.equal(a.peerId, peerId)
    assert.ok(await a.helia.pins.isPinned(added.cid))
    assert.ok(await a.helia.blockstore.has(loose), 'the unpinned block survived the restart')
    await a.helia.gc()
    assert.equal(await a.helia.blockstore.has(loose), false, 'gc removed the unpinned block')
    const local = await getDataset(a.helia, added.cid, { offline: true })
    assert.equal(local.shards.length, added.manifest.shards.length)

    // Still served: a new peer that knows only the bootstrap node fetches the last shard from A.
    const c = await startHost({ bootstrap: boot })
    started.push(c)
    const last = added.manifest.shards.length - 1
    const got = await getDataset(c.helia, added.cid, { shard: last, timeoutMs: 30_000 })
    assert.equal(got.shards[0].bytes.byteLength, added.manifest.shards[last].bytes)

    // Unpinned, the dataset goes at the next gc.
    await pinRm(a.helia, added.cid)
    await a.helia.gc()
    assert.equal(await a.helia.blockstore.has(added.cid), false)
    assert.equal(await a.helia.blockstore.has(added.manifest.shards[0].cid), false)
  })

  it('exports a dataset as a CAR that gives the same root CID on a fresh node', async () => {
    const a = await startHost()
    const fresh = await startHost()
    started.push(a, fresh)
    const added = await addDataset(a.helia, 'mnist:500', { name: 'mnist-500', license: 'CC-BY-SA-3.0', shards: 4, provide: false })
    const carPath = join(dir, 'mnist-500.car')
    const { bytes } = await exportCar(a.helia, added.cid, carPath, { offline: true })
    assert.ok(bytes > added.manifest.totalBytes)
    const imported = await importCar(fresh.helia, carPath)
    assert.equal(imported.root.toString(), added.cid.toString())
    assert.ok(await fresh.helia.pins.isPinned(imported.root))
    const all = await getDataset(fresh.helia, imported.root, { offline: true })
    assert.equal(all.shards.reduce((s, x) => s + x.bytes.byteLength, 0), added.manifest.totalBytes)
    assert.equal(all.manifest.format.kind, 'csv')
  })

  it('pins public datasets on a bootstrap-like node and reports pinned bytes', async () => {
    const a = await startHost({ bootstrap: boot })
    started.push(a)
    const one = await addDataset(a.helia, await textFile('one.txt', 3000), { name: 'one', license: 'CC0-1.0', shards: 3 })
    const two = await addDataset(a.helia, 'mnist:200', { name: 'two', license: 'CC-BY-SA-3.0', shards: 2 })
    assert.equal(await pinnedBytes(boot.helia), 0)
    // The bootstrap node's keeper: fetches, verifies, pins and announces each dataset.
    const keeping = new PublicDatasetKeeper({ helia: boot.helia, cids: [one.cid, two.cid], timeoutMs: 30_000 })
    keeping.start()
    await waitFor('the keeper to pin both', () => keeping.counts().pinned === 2 || keeping.counts().failed > 0)
    await keeping.stop()
    assert.deepEqual(keeping.status().map(d => d.state), ['pinned', 'pinned'])
    const expected = await dagSize(a.helia, one.cid) + await dagSize(a.helia, two.cid)
    assert.equal(await pinnedBytes(boot.helia), expected)
    assert.deepEqual((await pinLs(boot.helia)).map(p => p.cid.toString()).sort(), [one.cid.toString(), two.cid.toString()].sort())
    await boot.helia.gc()
    assert.ok((await getDataset(boot.helia, two.cid, { offline: true })).shards.length === 2, 'kept through gc')
    // Another node's keeper pins what is there, and stops when asked.
    const keeper = await startHost({ bootstrap: boot })
    started.push(keeper)
    const another = new PublicDatasetKeeper({ helia: keeper.helia, cids: [two.cid], recheckIntervalMs: 60_000, timeoutMs: 30_000 })
    another.start()
    await waitFor('the keeper to pin', async () => await keeper.helia.pins.isPinned(two.cid))
    await another.stop()
    // pin add / rm by hand on another peer
    const b = await startHost({ bootstrap: boot })
    started.push(b)
    const pinned = await pinAdd(b.helia, one.cid, { timeoutMs: 30_000 })
    assert.equal(pinned.bytes, await dagSize(a.helia, one.cid))
    await pinRm(b.helia, one.cid)
    assert.equal((await pinLs(b.helia)).length, 0)
  })
})
