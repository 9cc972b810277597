import assert from 'node:assert/strict'
import { mkdtemp, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import all from 'it-all'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as raw from 'multiformats/codecs/raw'
import type { Host } from '../../node/network/host.ts'
import { addDataset, getDataset, listDatasets } from '../../node/storage/datasets.ts'
import { mnistCsv } from '../../node/storage/importers/mnist.ts'
import { ContentNotFoundError, ContentTooLargeError } from '../../node/storage/errors.ts'
import type { PeerId } from '@libp2p/interface'
import { rawBlockstore, startHost, stopAll } from './helpers.ts'
import { removeDir } from '../helpers/temp-dir.ts'

describe('storage: datasets over the DHT', function () {
  this.timeout(120_000)
  let dir: string
  let boot: Host, a: Host, c: Host
  let csvPath: string
  let csv: Buffer
  let reachA = false

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-storage-'))
    csvPath = join(dir, 'mnist.csv')
    await writeFile(csvPath, mnistCsv({ count: 2000, header: true }).bytes)
    csv = await readFile(csvPath)
    boot = await startHost()
    a = await startHost({ bootstrap: boot })
    // C may not connect to A (either way) until the test lets it: it can only learn A from the DHT.
    const isA = (peer: PeerId): boolean => !reachA && peer.equals(a.libp2p.peerId)
    c = await startHost({
      bootstrap: boot,
      connectionGater: { denyDialPeer: isA, denyInboundEncryptedConnection: isA, denyOutboundEncryptedConnection: isA }
    })
  })

  after(async () => {
    await stopAll([c, a, boot])
    await removeDir(dir)
  })

  it('C, knowing only the bootstrap node, finds A through the DHT and fetches shard 5 intact', async () => {
    const progress: number[] = []
    const added = await addDataset(a.helia, csvPath, {
      name: 'mnist-2000',
      license: 'CC-BY-SA-3.0',
      shards: 8,
      onProgress: evt => { if (evt.type === 'nearai:dataset:import:bytes') progress.push(evt.detail.imported) }
    })
    assert.equal(added.manifest.shards.length, 8)
    assert.equal(added.manifest.totalSamples, 2000)
    assert.equal(added.manifest.format.kind, 'csv')
    assert.equal(added.provided.failed.length, 0, 'manifest and shards announced')
    assert.equal(progress.at(-1), added.manifest.totalBytes)
    assert.ok(await a.helia.pins.isPinned(added.cid))

    assert.equal(c.libp2p.getConnections(a.libp2p.peerId).length, 0, 'C has not dialled A')
    reachA = true
    const got = await getDataset(c.helia, added.cid, { shard: 5, timeoutMs: 30_000 })

    // Shard 5 holds rows 1250..1499 of the input, cut on row boundaries, as A read them from disk.
    const rows = csv.toString('utf-8').split('\n').slice(1, -1)
    const expected = Buffer.from(rows.slice(1250, 1500).join('\n') + '\n')
    assert.equal(got.shards.length, 1)
    assert.deepEqual(Buffer.from(got.shards[0].bytes), expected)
    assert.ok(c.libp2p.getConnections(a.libp2p.peerId).length > 0, 'C found A as provider and dialled it')
    assert.equal(got.manifest.shards[5].samples, 250)
    await assert.rejects(getDataset(c.helia, added.cid, { maxBytes: 1000, timeoutMs: 10_000 }), (err: Error) => err instanceof ContentTooLargeError && err.message.includes(added.cid.toString()))
  })

  it('lists the datasets pinned on a node', async () => {
    const list = await listDatasets(a.helia)
    assert.equal(list.length, 1)
    assert.equal(list[0].name, 'mnist-2000')
    assert.equal(list[0].shards, 8)
  })

  it('fails within the timeout with ContentNotFoundError naming an unknown CID', async () => {
    const unknown = CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(`nobody has this ${Date.now()}`)))
    const started = Date.now()
    await assert.rejects(getDataset(c.helia, unknown, { timeoutMs: 2000 }), (err: Error) => {
      assert.ok(err instanceof ContentNotFoundError, `${err.name}: ${err.message}`)
      assert.equal(err.cid, unknown.toString())
      assert.match(err.message, new RegExp(unknown.toString()))
      return true
    })
    assert.ok(Date.now() - started < 6000, `gave up after ${Date.now() - started} ms`)
  })

  it('fetches from a connected holder that never announced the dataset (no provider records)', async () => {
    const b = await startHost({ bootstrap: boot })
    const d = await startHost({ bootstrap: boot })
    try {
      const path = join(dir, 'quiet.txt')
      await writeFile(path, Array.from({ length: 400 }, (_, i) => `quiet line ${i}`).join('\n') + '\n')
      const added = await addDataset(b.helia, path, { name: 'quiet', license: 'CC0-1.0', shards: 4, provide: false })
      await d.libp2p.dial(b.libp2p.getMultiaddrs()[0])
      const got = await getDataset(d.helia, added.cid, { timeoutMs: 20_000 })
      assert.equal(Buffer.concat(got.shards.map(s => s.bytes)).toString(), await readFile(path, 'utf-8'))
    } finally {
      await stopAll([d, b])
    }
  })

  it('rejects a block that does not match its CID, served by the only provider', async () => {
    const b = await startHost({ bootstrap: boot })
    const d = await startHost({ bootstrap: boot })
    let e: Host | undefined
    try {
      const path = join(dir, 'small.txt')
      await writeFile(path, 'one line\nanother line\n')
      const added = await addDataset(b.helia, path, { name: 'small', license: 'CC0-1.0', shards: 2 })
      const shard = added.manifest.shards[0]
      assert.equal(shard.cid.code, raw.code, 'a one-block shard')
      const good = Buffer.concat(await all(b.helia.blockstore.get(shard.cid)))
      // B's store now holds wrong bytes under the shard's CID, and B serves them.
      await rawBlockstore(b).delete(shard.cid)
      await rawBlockstore(b).put(shard.cid, new TextEncoder().encode('one lime\n'))
      // D learns the manifest (a different, intact block) and then asks for the corrupted shard.
      await assert.rejects(getDataset(d.helia, added.cid, { shard: 0, timeoutMs: 3000 }), (err: Error) => {
        assert.ok(err instanceof ContentNotFoundError, `${err.name}: ${err.message}`)
        assert.equal(err.cid, shard.cid.toString())
        return true
      })
      assert.ok(d.libp2p.getConnections(b.libp2p.peerId).length > 0, 'D reached B, which served the bad block')
      assert.equal(await d.helia.blockstore.has(shard.cid), false, 'the bad block was not stored')
      // Control: once B holds the right bytes again, the same fetch (from a node that did not see the bad block) succeeds.
      await rawBlockstore(b).delete(shard.cid)
      await rawBlockstore(b).put(shard.cid, good)
      e = await startHost({ bootstrap: boot })
      const got = await getDataset(e.helia, added.cid, { shard: 0, timeoutMs: 10_000 })
      assert.equal(Buffer.from(got.shards[0].bytes).toString(), 'one line\n')
    } finally {
      await stopAll([e, d, b])
    }
  })
})
