/**
 * A job on chain and its validators, from the command line: `job create --validators` needs an evaluation set,
 * and `validator start` says clearly why it cannot validate a job.
 */
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openLedger } from '../../node/chain/index.ts'
import { runCli, startCli } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'

const EVAL = 'bafyreihsu2cunbgsjnxsv6s2dd2gtkdbiq23tyjuh7wlkbsjs35ztw2jdi'
const DATA = 'bafyreidwl7hrnylfystqgg5yf6qklfndkl4sbnqhqhztk62wyanfg7ce7a'

describe('nearai job create --validators and validator start', function () {
  this.timeout(180_000)
  let dir: string
  let home: string
  const quiet = ['--log-level', 'warn']

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-validator-cli-'))
    home = join(dir, 'home')
    assert.equal((await runCli(['--home', home, 'init'])).code, 0)
  })

  after(async () => { await removeDir(dir) })

  const spec = (id: string, over: Record<string, unknown> = {}): Record<string, unknown> =>
    ({ id, model: { kind: 'mlp', inputs: 784, hidden: [16], classes: 10 }, dataset: DATA, evalDataset: EVAL, rounds: 2, ...over })

  it('refuses a job on chain without an evaluation set before storing anything, and registers one that has it', async () => {
    const bare = join(dir, 'bare.json')
    const { evalDataset: _, ...withoutEval } = spec('no-eval')
    await writeFile(bare, JSON.stringify(withoutEval))
    const refused = await runCli(['--home', home, ...quiet, 'job', 'create', '--skip-dataset-check', '--spec', bare, '--validators', 'validator-1.test'])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /^nearai: job no-eval names no evaluation set: a job on chain needs "evalDataset" \(a held-out dataset CID\) in its spec/m)
    const cnn = join(dir, 'cnn.json')
    await writeFile(cnn, JSON.stringify(spec('a-cnn', { model: { kind: 'cnn', inputShape: [28, 28, 1], conv: [{ filters: 4, kernel: 3 }], classes: 10 } })))
    const cnnRefused = await runCli(['--home', home, ...quiet, 'job', 'create', '--skip-dataset-check', '--spec', cnn, '--validators', 'validator-1.test'])
    assert.equal(cnnRefused.code, 1)
    assert.match(cnnRefused.stderr, /cnn is not supported yet, so validators cannot attest a cnn job/)
    const ls = await runCli(['--home', home, ...quiet, 'job', 'ls'])
    assert.equal(ls.stdout, '', 'nothing was stored')

    const good = join(dir, 'good.json')
    await writeFile(good, JSON.stringify(spec('with-eval')))
    const created = await runCli(['--home', home, ...quiet, 'job', 'create', '--skip-dataset-check', '--spec', good, '--validators', 'validator-1.test,validator-2.test'])
    assert.equal(created.code, 0, created.stderr)
    assert.match(created.stdout, new RegExp(`on chain \\(dev, contract nearai.test\\): validators validator-1.test, validator-2.test, threshold 2, evaluation set ${EVAL}`))
    const ledger = await openLedger({ network: 'dev', home, accountId: 'alice.test' })
    try {
      const job = await ledger.getJob('with-eval')
      assert.equal(job?.eval_cid, EVAL)
      assert.deepEqual(job?.validators, ['validator-1.test', 'validator-2.test'])
    } finally {
      await ledger.close()
    }
  })

  it('validator start names what is missing: an account, the job on chain, a place in its validator set', async () => {
    const noAccount = await runCli(['--home', home, ...quiet, 'validator', 'start', '--job', 'with-eval'])
    assert.equal(noAccount.code, 1)
    assert.match(noAccount.stderr, /a validator needs its NEAR account: set chain.accountId \(or --account\)/)

    const offChain = join(dir, 'off-chain.json')
    await writeFile(offChain, JSON.stringify(spec('off-chain')))
    const notOnChain = await runCli(['--home', home, ...quiet, 'validator', 'start', '--job', offChain, '--account', 'validator-1.test'])
    assert.equal(notOnChain.code, 1)
    assert.match(notOnChain.stderr, /job off-chain is not on chain \(contract nearai.test\): create it with `nearai job create --spec <file> --validators \.\.\.`/)

    const outsider = await runCli(['--home', home, ...quiet, 'validator', 'start', '--job', 'with-eval', '--account', 'validator-3.test'])
    assert.equal(outsider.code, 1)
    assert.match(outsider.stderr, /validator-3.test is not a validator of job with-eval \(its validators: validator-1.test, validator-2.test\)/)
  })

  it('validator start stops cleanly on SIGTERM while it waits for the job\'s data', async () => {
    const v = startCli(['--home', home, 'validator', 'start', '--job', 'with-eval', '--account', 'validator-1.test'])
    const validating = await v.waitForLog('validating job')
    assert.deepEqual([validating.threshold, validating.evalCid], [2, EVAL])
    v.child.kill('SIGTERM')
    assert.equal(await v.exited, 0)
    assert.ok(v.logs.some(l => l.msg === 'stopped cleanly'), JSON.stringify(v.logs.slice(-4)))
    assert.ok(!v.logs.some(l => l.level >= 50), 'no error on the way out')
  })
})
