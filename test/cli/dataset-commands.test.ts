import assert from 'node:assert/strict'
import { mkdtemp, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCli } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'

describe('nearai dataset and pin commands', function () {
  this.timeout(180_000)
  let dir: string
  let homeA: string
  let homeB: string
  const quiet = ['--log-level', 'warn']

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-cli-'))
    homeA = join(dir, 'a')
    homeB = join(dir, 'b')
    for (const home of [homeA, homeB]) assert.equal((await runCli(['--home', home, 'init'])).code, 0)
  })

  after(async () => { await removeDir(dir) })

  it('adds the MNIST digits as a sharded dataset, lists, fetches a shard, and moves it to another node as a CAR', async () => {
    const add = await runCli(['--home', homeA, ...quiet, 'dataset', 'add', 'mnist:300', '--name', 'digits', '--license', 'CC-BY-SA-3.0', '--shards', '3'])
    assert.equal(add.code, 0, add.stderr)
    const cid = add.stdout.trim()
    assert.match(cid, /^bafy/, 'prints the manifest CID')
    assert.match(add.stderr, /3 shards, 300 samples/)

    const ls = await runCli(['--home', homeA, ...quiet, 'dataset', 'ls'])
    assert.ok(ls.stdout.includes(`${cid}\tdigits\tcsv\t3 shards\t300 samples`), ls.stdout)

    const show = await runCli(['--home', homeA, ...quiet, 'dataset', 'show', cid, '--json'])
    assert.equal(show.code, 0, show.stderr)
    const manifest = JSON.parse(show.stdout)
    assert.equal(manifest.cid, cid)
    assert.equal(manifest.name, 'digits')
    assert.equal(manifest.license, 'CC-BY-SA-3.0')
    assert.equal(manifest.format.kind, 'csv')
    assert.deepEqual(manifest.shards.map((s: { index: number, samples: number }) => [s.index, s.samples]), [[0, 100], [1, 100], [2, 100]])
    assert.equal(manifest.shards.reduce((n: number, s: { bytes: number }) => n + s.bytes, 0), manifest.totalBytes)
    assert.equal(manifest.totalSamples, 300)
    const shown = await runCli(['--home', homeA, ...quiet, 'dataset', 'show', cid])
    assert.match(shown.stdout, /^name {6}digits$/m)
    assert.match(shown.stdout, /^shards {4}3$/m)
    assert.match(shown.stdout, /^total {5}300 samples, /m)

    const get = await runCli(['--home', homeA, ...quiet, 'dataset', 'get', cid, '--shard', '1'])
    assert.equal(get.code, 0, get.stderr)
    assert.match(get.stdout, /^shard 1\t\S+\t\d+ bytes\tverified$/m)

    const car = join(dir, 'digits.car')
    assert.equal((await runCli(['--home', homeA, ...quiet, 'dataset', 'export', cid, '--car', car])).code, 0)
    assert.ok((await stat(car)).size > 100_000, 'the CAR holds the shards')
    const imported = await runCli(['--home', homeB, ...quiet, 'dataset', 'import-car', car])
    assert.equal(imported.code, 0, imported.stderr)
    assert.equal(imported.stdout.trim(), cid, 'the same root CID on the other node')
    const pins = await runCli(['--home', homeB, ...quiet, 'pin', 'ls'])
    assert.ok(pins.stdout.includes(cid), 'the imported dataset is pinned')
  })

  it('rejects bad input with a clear message and a non-zero exit', async () => {
    const bad = await runCli(['--home', homeA, ...quiet, 'dataset', 'get', 'not-a-cid'])
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /"not-a-cid" is not a dataset manifest CID/)
    const missing = await runCli(['--home', join(dir, 'nohome'), ...quiet, 'dataset', 'ls'])
    assert.notEqual(missing.code, 0)
    assert.match(missing.stderr, /run `nearai init/)
  })
})
