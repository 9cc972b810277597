import assert from 'node:assert/strict'
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { saveJob, saveStatePointer } from '../../node/job/job-store.ts'
import { parseJobSpec } from '../../node/training/job-spec.ts'
import { runCli } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'

/** A CID no one has: a spec naming it cannot be checked against its dataset. */
const NOBODYS = 'bafyreifa6bwtpqaeg2umvu3gj2daiqmed2zgpijedvyhv375kyuvbabpea'

describe('nearai job commands', function () {
  this.timeout(90_000)
  let dir: string
  let home: string
  /** A dataset of 8 features and 3 classes, added to the home, that the specs below train on. */
  let DATASET: string
  const quiet = ['--log-level', 'warn']

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-cli-job-'))
    home = join(dir, 'home')
    const init = await runCli(['--home', home, 'init'])
    assert.equal(init.code, 0, init.stderr)
    const rows = ['label,a,b,c,d,e,f,g,h', ...Array.from({ length: 30 }, (_, i) => `${i % 3},${Array.from({ length: 8 }, (_, k) => (i * k) % 7).join(',')}`)]
    await writeFile(join(dir, 'tiny.csv'), rows.join('\n') + '\n')
    const added = await runCli(['--home', home, ...quiet, 'dataset', 'add', join(dir, 'tiny.csv'), '--name', 'tiny', '--shards', '2'])
    assert.equal(added.code, 0, added.stderr)
    DATASET = added.stdout.trim()
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

  it('prints one JSON document with --json', async () => {
    const specPath = join(dir, 'json.json')
    await writeFile(specPath, JSON.stringify({ id: 'json-job', model: { kind: 'mlp', inputs: 8, hidden: [4], classes: 3 }, dataset: DATASET, rounds: 2 }))
    const created = await runCli(['--home', home, ...quiet, 'job', 'create', '--spec', specPath, '--json'])
    assert.equal(created.code, 0, created.stderr)
    const doc = JSON.parse(created.stdout)
    assert.equal(doc.job, 'json-job')
    assert.match(doc.specCid, /^b[a-z2-7]+$/)
    assert.equal(doc.dataset, DATASET)
    const ls = JSON.parse((await runCli(['--home', home, ...quiet, 'job', 'ls', '--json'])).stdout)
    assert.deepEqual(ls.jobs.find((j: { job: string }) => j.job === 'json-job'), { job: 'json-job', specCid: doc.specCid, rounds: 2, completedRounds: 0, stateCid: null })
  })

  it('refuses a model whose inputs or classes do not match the dataset, naming both shapes, and records nothing', async () => {
    const specPath = join(dir, 'misfit.json')
    await writeFile(specPath, JSON.stringify({ id: 'misfit', model: { kind: 'mlp', inputs: 784, hidden: [4], classes: 10 }, dataset: DATASET }))
    const bad = await runCli(['--home', home, ...quiet, 'job', 'create', '--spec', specPath])
    assert.equal(bad.code, 1)
    assert.equal(bad.stdout, '')
    assert.equal(bad.stderr, `nearai: the job's model does not fit dataset ${DATASET} ("tiny"): the model takes inputs of shape [784] (784 values), the dataset's samples have shape [8] (8 values); the model has 10 classes, the dataset's labels have 3\n`)
    await assert.rejects(stat(join(home, 'jobs', 'misfit')), 'nothing recorded for the refused job')
  })

  it('refuses a spec whose dataset is not in the home when no bootstrap node is configured to fetch it from', async () => {
    const specPath = join(dir, 'elsewhere.json')
    await writeFile(specPath, JSON.stringify({ id: 'elsewhere', model: { kind: 'mlp', inputs: 8, hidden: [4], classes: 3 }, dataset: NOBODYS }))
    const bad = await runCli(['--home', home, ...quiet, 'job', 'create', '--spec', specPath])
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, new RegExp(`^nearai: dataset ${NOBODYS} \\(the spec's dataset\\) is not in this home, and no bootstrap node is configured`))
    await assert.rejects(stat(join(home, 'jobs', 'elsewhere')))
    // Asked to, it stores the spec unchecked (a dataset that is published later).
    const unchecked = await runCli(['--home', home, ...quiet, 'job', 'create', '--spec', specPath, '--skip-dataset-check'])
    assert.equal(unchecked.code, 0, unchecked.stderr)
    assert.match(unchecked.stdout, /^job elsewhere$/m)
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
    for (const word of ['job spec', 'dataset CID', 'rounds', 'inner/outer optimizer', 'codec', 'checkpointEvery', 'model fits the dataset', 'nearai node start --job', '--json']) {
      assert.ok(text.includes(word), `help mentions ${word}: ${help.stdout}`)
    }
  })
})
