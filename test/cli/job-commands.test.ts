import assert from 'node:assert/strict'
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { saveJob, saveStatePointer } from '../../node/job/job-store.ts'
import { parseJobSpec } from '../../node/training/job-spec.ts'
import { runCli } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'

const DATASET = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'

describe('nearai job commands', function () {
  this.timeout(90_000)
  let dir: string
  let home: string
  const quiet = ['--log-level', 'warn']

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-cli-job-'))
    home = join(dir, 'home')
    const init = await runCli(['--home', home, 'init'])
    assert.equal(init.code, 0, init.stderr)
    // The node `job create` starts stays on loopback and dials nobody.
    await writeFile(join(home, 'config.json'), JSON.stringify({ network: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], relayClient: false } }))
  })

  after(async () => { await removeDir(dir) })

  it('creates a job from a spec file, printing its id and spec CID, and lists it', async () => {
    const specPath = join(dir, 'tiny.json')
    await writeFile(specPath, JSON.stringify({ id: 'tiny-mlp', model: { kind: 'mlp', inputs: 8, hidden: [4], classes: 3 }, dataset: DATASET, rounds: 6, checkpointEvery: 3 }))
    const created = await runCli(['--home', home, ...quiet, 'job', 'create', '--spec', specPath])
    assert.equal(created.code, 0, created.stderr)
    assert.match(created.stdout, /^job tiny-mlp$/m)
    const cid = /^spec CID (b[a-z2-7]+)$/m.exec(created.stdout)?.[1]
    assert.ok(cid != null, created.stdout)
    assert.match(created.stdout, new RegExp(`6 rounds of 50 inner steps on dataset ${DATASET}; checkpoint every 3 rounds`))

    const record = JSON.parse(await readFile(join(home, 'jobs', 'tiny-mlp', 'job.json'), 'utf8'))
    assert.equal(record.specCid, cid, 'the printed CID is the recorded one')
    assert.equal(record.spec.rounds, 6)

    // A second job, recorded by the library, whose node has completed two rounds: `job ls` shows the progress.
    await saveJob(home, { spec: parseJobSpec({ ...JSON.parse(await readFile(specPath, 'utf8')), id: 'other-job', rounds: 4 }), specCid: DATASET })
    await saveStatePointer(home, 'other-job', { round: 1, cid: DATASET, weightsSha256: 'ab'.repeat(32) })

    const ls = await runCli(['--home', home, ...quiet, 'job', 'ls'])
    assert.equal(ls.code, 0, ls.stderr)
    assert.equal(ls.stdout, `other-job\t${DATASET}\tround 2/4 (state ${DATASET})\ntiny-mlp\t${cid}\tnot started (6 rounds)\n`)
  })

  it('refuses an invalid spec with a non-zero exit and a message naming the bad field', async () => {
    const specPath = join(dir, 'bad.json')
    await writeFile(specPath, JSON.stringify({ id: 'bad-job', model: { kind: 'mlp', inputs: 8, hidden: [4], classes: 1 }, dataset: DATASET, inner: { lr: -1 } }))
    const bad = await runCli(['--home', home, ...quiet, 'job', 'create', '--spec', specPath])
    assert.notEqual(bad.code, 0)
    assert.match(bad.stderr, /invalid job spec/)
    assert.match(bad.stderr, /model\.classes:/)
    assert.match(bad.stderr, /inner\.lr:/)
    await assert.rejects(stat(join(home, 'jobs', 'bad-job')), 'nothing recorded for the invalid job')
  })

  it('explains the spec in `job create --help`', async () => {
    const help = await runCli(['job', 'create', '--help'])
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.stdout, /--spec <file>/)
    const text = help.stdout.replace(/\s+/g, ' ') // commander wraps lines to the terminal width
    for (const word of ['job spec', 'dataset CID', 'rounds', 'inner/outer optimizer', 'codec', 'checkpointEvery', 'nearai node start --job']) {
      assert.ok(text.includes(word), `help mentions ${word}: ${help.stdout}`)
    }
  })
})
