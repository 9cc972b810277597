import assert from 'node:assert/strict'
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isPartialFile, partialPath, removePartialFiles, writeFileAtomic } from '../../node/config/durable-file.ts'
import { initHome, IDENTITY_FILE } from '../../node/config/home.ts'
import { removeDir } from '../helpers/temp-dir.ts'

describe('durable files: write-then-rename', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'nearai-durable-')) })
  afterEach(async () => { await removeDir(dir) })

  it('replaces a file whole and leaves no partial file beside it', async () => {
    const path = join(dir, 'state.json')
    await writeFileAtomic(path, 'old')
    await writeFileAtomic(path, 'new')
    assert.equal(await readFile(path, 'utf8'), 'new')
    assert.deepEqual(await readdir(dir), ['state.json'])
  })

  it('exclusive: never replaces an existing file (EEXIST), and cleans its partial file', async () => {
    const path = join(dir, 'identity.key')
    await writeFileAtomic(path, 'first', 0o600, { exclusive: true })
    await assert.rejects(writeFileAtomic(path, 'second', 0o600, { exclusive: true }), (err: NodeJS.ErrnoException) => err.code === 'EEXIST')
    assert.equal(await readFile(path, 'utf8'), 'first')
    assert.deepEqual(await readdir(dir), ['identity.key'])
  })

  it('a second init keeps the identity and the config a user wrote', async () => {
    const first = await initHome(dir, { a: 1 })
    await writeFile(join(dir, 'config.json'), '{"mine":true}\n')
    const second = await initHome(dir, { a: 2 })
    assert.equal(second.peerId, first.peerId)
    assert.equal(second.created, false)
    assert.equal(await readFile(join(dir, 'config.json'), 'utf8'), '{"mine":true}\n')
    assert.ok((await readdir(dir)).includes(IDENTITY_FILE))
  })

  it('names partial files so that none is a real name, and removes only those', async () => {
    const partial = partialPath(join(dir, 'config.json'))
    assert.ok(isPartialFile(partial.split('/').pop()!))
    for (const name of ['config.json', 'state.json', 'shard-0', '.hidden', 'x.tmp', 'CIQA.data']) assert.equal(isPartialFile(name), false, name)
    assert.ok(isPartialFile('.CIQA.data.tmp')) // blockstore-fs / datastore-fs (steno) temp files
    await writeFile(partial, 'torn')
    await mkdir(join(dir, 'blocks', 'AB'), { recursive: true })
    await writeFile(join(dir, 'blocks', 'AB', '.CIQAB.data.tmp'), 'torn')
    await writeFile(join(dir, 'blocks', 'AB', 'CIQAB.data'), 'whole')
    await writeFile(join(dir, 'config.json'), '{}')
    assert.equal(await removePartialFiles(dir), 1, 'depth 0: only the top folder')
    assert.equal(await removePartialFiles(dir, 2), 1)
    assert.deepEqual((await readdir(join(dir, 'blocks', 'AB'))).sort(), ['CIQAB.data'])
    assert.deepEqual((await readdir(dir)).sort(), ['blocks', 'config.json'])
    assert.equal(await removePartialFiles(join(dir, 'missing')), 0)
  })
})
