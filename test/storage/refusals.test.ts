import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { unixfs } from '@helia/unixfs'
import { CarWriter } from '@ipld/car/writer'
import all from 'it-all'
import { CID } from 'multiformats/cid'
import type { Host } from '../../node/network/host.ts'
import { openHomeStore, isNotLocal, type HomeStore } from '../../node/peer/home-store.ts'
import { addDataset, getDataset } from '../../node/storage/datasets.ts'
import { exportCar, importCar } from '../../node/storage/car.ts'
import { pinAdd, pinRm } from '../../node/storage/pins.ts'
import { getCheckpointManifest, NotACheckpointError } from '../../node/storage/checkpoints.ts'
import { ContentNotFoundError, InvalidContentError, NoSuchShardError, NotPinnedError, UnsupportedInputError } from '../../node/storage/errors.ts'
import { removeDir } from '../helpers/temp-dir.ts'
import { startHost, stopAll } from './helpers.ts'

/** A dag-cbor CID no one has. */
const NOBODYS = CID.parse('bafyreifa6bwtpqaeg2umvu3gj2daiqmed2zgpijedvyhv375kyuvbabpea')

describe('storage: bad input is refused with errors that say what is wrong, and leaves nothing behind', function () {
  this.timeout(120_000)
  let dir: string
  let store: HomeStore
  let dataset: CID

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-refusals-'))
    // The home's own store with no network, as the CLI's local commands use it.
    store = await openHomeStore(join(dir, 'home'))
    dataset = (await addDataset(store.helia, 'mnist:30', { name: 'digits', license: 'CC-BY-SA-3.0', shards: 3, provide: false })).cid
  })

  after(async () => {
    await store.close()
    await removeDir(dir)
  })

  it('refuses a binary file as a text dataset, and text full of control characters unless the text format is forced', async () => {
    const binary = join(dir, 'random.bin')
    await writeFile(binary, Buffer.concat([randomBytes(4096), Buffer.from([0xff, 0xfe, 0x0a])]))
    await assert.rejects(addDataset(store.helia, binary, { name: 'x', license: 'x' }), (err: Error) =>
      err instanceof UnsupportedInputError && /random\.bin: line \d+ is not valid UTF-8, so this is not a text file/.test(err.message))
    const zeros = join(dir, 'zeros.dat')
    await writeFile(zeros, Buffer.concat([Buffer.alloc(2000), Buffer.from('some text\n')]))
    await assert.rejects(addDataset(store.helia, zeros, { name: 'x', license: 'x' }), (err: Error) =>
      err instanceof UnsupportedInputError && /zeros\.dat: \d+% of its bytes are control characters, so it does not look like text; ask for the text format explicitly \(--format text\)/.test(err.message))
    const forced = await addDataset(store.helia, zeros, { name: 'zeros', license: 'x', format: 'text', provide: false })
    assert.equal(forced.manifest.format.kind, 'text')
  })

  it('names the shard range of a dataset when a shard index is out of it', async () => {
    await assert.rejects(getDataset(store.helia, dataset, { shard: 99, offline: true }), (err: Error) =>
      err instanceof NoSuchShardError && err.message === `dataset ${dataset.toString()} has 3 shards (0–2); there is no shard 99`)
  })

  it('fails an export of content the home does not hold at once, as "not local", leaving no file', async () => {
    const car = join(dir, 'missing.car')
    await assert.rejects(exportCar(store.helia, NOBODYS, car, { offline: true }), (err: Error) => isNotLocal(err))
    assert.deepEqual((await readdir(dir)).filter(f => f.startsWith('missing.car')), [], 'no CAR, no partial file')
  })

  it('refuses files that are not CARs, and a CAR holding only its header, naming the file', async () => {
    const garbage = join(dir, 'garbage.car')
    await writeFile(garbage, randomBytes(59))
    await assert.rejects(importCar(store.helia, garbage), (err: Error) => err instanceof InvalidContentError && err.message.startsWith(`${garbage} is not a valid CAR file (59 bytes; `))
    const headerOnly = join(dir, 'header-only.car')
    const { writer, out } = CarWriter.create([NOBODYS])
    const bytes = all(out)
    await writer.close()
    await writeFile(headerOnly, Buffer.concat(await bytes))
    await assert.rejects(importCar(store.helia, headerOnly), (err: Error) => err instanceof InvalidContentError && err.message === `${headerOnly} holds no blocks, not even its root ${NOBODYS.toString()} (an export that did not finish?)`)
    await assert.rejects(importCar(store.helia, join(dir, 'nope.car')), /nope\.car: no such file/)
  })

  it('says whether a CID to unpin is not pinned or only part of pinned content', async () => {
    await assert.rejects(pinRm(store.helia, NOBODYS), (err: Error) => err instanceof NotPinnedError && /is not pinned on this node/.test(err.message))
    const manifest = (await getDataset(store.helia, dataset, { shard: 0, offline: true })).shards[0].cid
    await assert.rejects(pinRm(store.helia, manifest), (err: Error) => err instanceof NotPinnedError && /is not pinned itself but is part of pinned content/.test(err.message))
  })

  it('names a CID that is no checkpoint as such, before fetching anything large', async () => {
    await assert.rejects(getCheckpointManifest(store.helia, dataset, { offline: true }), (err: Error) =>
      err instanceof NotACheckpointError && err.message.startsWith(`${dataset.toString()} is not a checkpoint: it is a dag-cbor block (dataset manifests are dag-cbor`))
    const folder = await unixfs(store.helia).addDirectory()
    await assert.rejects(getCheckpointManifest(store.helia, folder, { offline: true }), (err: Error) =>
      err instanceof NotACheckpointError && err.message.startsWith(`${folder.toString()} is not a checkpoint: it has no checkpoint.json`))
  })


  it('pinning content that is not local fails in the call (no unhandled rejection), offline at once and online at the deadline', async () => {
    await assert.rejects(pinAdd(store.helia, NOBODYS, { offline: true }), (err: Error) => isNotLocal(err))
    let host: Host | undefined
    try {
      host = await startHost()
      const car = join(dir, 'nobody.car')
      await assert.rejects(pinAdd(host.helia, NOBODYS, { timeoutMs: 1000 }), (err: Error) => err instanceof ContentNotFoundError)
      await assert.rejects(exportCar(host.helia, NOBODYS, car, { timeoutMs: 1000 }), (err: Error) => err instanceof ContentNotFoundError)
      assert.ok(!existsSync(car))
      assert.deepEqual((await readdir(dir)).filter(f => f.startsWith('nobody.car')), [], 'no partial file either')
    } finally {
      await stopAll([host])
    }
  })
})
