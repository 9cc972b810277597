import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { openDevChain, DevChainLedger, DEFAULT_CONTRACT_ACCOUNT } from '../../node/chain/index.ts'
import { ensureContractBuilt } from '../../contracts/build.ts'
import { openHomeStore } from '../../node/peer/home-store.ts'
import { publishCheckpoint } from '../../node/storage/checkpoints.ts'
import { modelArtifacts } from '../../node/storage/checkpoint-model.ts'
import { runCliWith } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'

/** Log lines that mean a libp2p node was started. */
const NETWORK_STARTED = /"msg":"(node started|joining the network)"/

describe('nearai --json, dataset show and checkpoint show', function () {
  this.timeout(300_000)
  let dir: string
  let home: string
  const checkpoints: Record<'final' | 'candidate' | 'unanchored', { cid: string, sha: string }> = {} as any

  /** Runs a command with JSON logs at info level, so that stderr shows whether a node was started. */
  async function json (args: string[], opts: { network?: boolean } = {}): Promise<any> {
    const r = await runCliWith(process.execPath, ['--home', home, ...args, '--json'], { env: { NEARAI_LOG_FORMAT: 'json', NEARAI_LOG_LEVEL: 'info' }, timeoutMs: 120_000 })
    assert.equal(r.code, 0, `nearai ${args.join(' ')} --json: ${r.stderr}`)
    if (opts.network !== true) assert.doesNotMatch(r.stderr, NETWORK_STARTED, `nearai ${args.join(' ')} started a network node`)
    return JSON.parse(r.stdout) // one document: two would not parse
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-json-'))
    home = join(dir, 'home')
    const init = await runCliWith(process.execPath, ['--home', home, 'init', '--json'])
    assert.equal(init.code, 0, init.stderr)
    const created = JSON.parse(init.stdout)
    assert.deepEqual(Object.keys(created).sort(), ['created', 'home', 'peerId'])
    assert.equal(created.created, true)
    assert.match(created.peerId, /^12D3KooW/)
    await writeFile(join(home, 'config.json'), JSON.stringify({ network: { listen: ['/ip4/127.0.0.1/tcp/0'], relayClient: false } }))

    // Three checkpoints of job show-job in the home; on the home's dev chain round 0 is final, round 1 has one
    // attestation of two needed, round 2 none.
    await ensureContractBuilt()
    const previous = tf.getBackend()
    await tf.setBackend('cpu')
    const store = await openHomeStore(home)
    try {
      const rounds = ['final', 'candidate', 'unanchored'] as const
      for (const [round, name] of rounds.entries()) {
        const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 2, kernelInitializer: 'zeros', biasInitializer: tf.initializers.constant({ value: round }) })] })
        const published = await publishCheckpoint(store.helia, { artifacts: await modelArtifacts(model), job: 'show-job', round, metrics: { loss: 0.5 }, provide: false })
        checkpoints[name] = { cid: published.cid.toString(), sha: published.manifest.weights.sha256 }
        model.dispose()
      }
    } finally {
      await store.close()
      if (previous != null) await tf.setBackend(previous)
    }
    const chain = await openDevChain({ home })
    try {
      const [v1, v2] = ['validator-1.test', 'validator-2.test'].map(accountId => new DevChainLedger({ chain, accountId, contractId: DEFAULT_CONTRACT_ACCOUNT, ownsChain: false }))
      await v1.storageDeposit()
      await v2.storageDeposit()
      // evalCid: the evaluation set a job on chain names once validators evaluate checkpoints (issue 9, section 2).
      const job = { job: 'show-job', specCid: checkpoints.final.cid, validators: ['validator-1.test', 'validator-2.test'], threshold: 2, evalCid: checkpoints.final.cid }
      await v1.createJob(job)
      const claim = (round: number, c: { cid: string, sha: string }): any => ({ job: 'show-job', round, checkpointCid: c.cid, weightsSha256: c.sha, contributionsRoot: '0'.repeat(64), contributionsTotal: 64, evalLoss: 0.5 })
      await v1.attest(claim(0, checkpoints.final))
      await v2.attest(claim(0, checkpoints.final))
      await v1.attest(claim(1, checkpoints.candidate))
    } finally {
      chain.close()
    }
  })

  after(async () => { await removeDir(dir) })

  it('prints exactly one JSON document for every one-shot command, and the local ones start no network node', async () => {
    const config = await json(['config', 'show'])
    assert.deepEqual(config.network.listen, ['/ip4/127.0.0.1/tcp/0'])
    assert.equal((await json(['config', 'show', '--env-names']))['network.listen'], 'NEARAI_NETWORK_LISTEN')

    const rows = ['label,a,b,c,d', ...Array.from({ length: 40 }, (_, i) => `${i % 2},${i},${i % 3},${i % 5},${i % 7}`)]
    await writeFile(join(dir, 'data.csv'), rows.join('\n') + '\n')
    const added = await json(['dataset', 'add', join(dir, 'data.csv'), '--name', 'small', '--license', 'CC0-1.0', '--shards', '4'])
    assert.deepEqual({ ...added, cid: typeof added.cid }, { cid: 'string', name: 'small', license: 'CC0-1.0', format: 'csv', shards: 4, samples: 40, bytes: added.bytes, announced: false })
    const cid = added.cid as string

    const shown = await json(['dataset', 'show', cid])
    assert.equal(shown.cid, cid)
    assert.equal(shown.format.label, 'label')
    assert.deepEqual(shown.shards.map((s: any) => s.samples), [10, 10, 10, 10])
    assert.equal(shown.totalBytes, added.bytes)

    const got = await json(['dataset', 'get', cid, '--shard', '2', '--out', join(dir, 'shards')])
    assert.deepEqual(got.shards.map((s: any) => [s.index, s.samples, s.verified]), [[2, 10, true]])
    assert.equal((await readFile(join(dir, 'shards', 'shard-2'))).byteLength, got.shards[0].bytes)

    assert.deepEqual((await json(['dataset', 'ls'])).datasets.map((d: any) => [d.cid, d.name, d.totalSamples]), [[cid, 'small', 40]])

    const exported = await json(['dataset', 'export', cid, '--car', join(dir, 'small.car')])
    assert.equal(exported.bytes, (await readFile(join(dir, 'small.car'))).byteLength)
    const imported = await json(['dataset', 'import-car', join(dir, 'small.car')])
    assert.equal(imported.root, cid)

    assert.deepEqual(await json(['pin', 'add', cid]), { cid, pinned: true, alreadyPinned: true, bytes: (await json(['pin', 'ls'])).pins.find((p: any) => p.cid === cid).metadata.bytes })

    await writeFile(join(dir, 'job.json'), JSON.stringify({ id: 'json-job', model: { kind: 'mlp', inputs: 4, hidden: [3], classes: 2 }, dataset: cid, rounds: 3 }))
    const job = await json(['job', 'create', '--spec', join(dir, 'job.json')])
    assert.equal(job.job, 'json-job')
    assert.deepEqual((await json(['job', 'ls'])).jobs.map((j: any) => [j.job, j.specCid, j.completedRounds]), [['json-job', job.specCid, 0]])

    const fetched = await json(['checkpoint', 'get', checkpoints.final.cid, '--out', join(dir, 'model')])
    assert.deepEqual([fetched.job, fetched.round, fetched.weightsSha256, fetched.verified], ['show-job', 0, checkpoints.final.sha, true])
    assert.ok(existsSync(join(dir, 'model', 'model.json')))

    assert.deepEqual(await json(['pin', 'rm', cid]), { cid, pinned: false })
  })

  it('checkpoint show reads checkpoint.json and says where its anchor stands: final, candidate, not anchored, chain unreachable', async () => {
    const final = await json(['checkpoint', 'show', checkpoints.final.cid])
    assert.equal(final.cid, checkpoints.final.cid)
    assert.deepEqual([final.job, final.round, final.parent, final.weightsSha256], ['show-job', 0, null, checkpoints.final.sha])
    assert.deepEqual(final.anchor, { status: 'final', attesters: ['validator-1.test', 'validator-2.test'], weightsMatch: true, finalCheckpoint: checkpoints.final.cid })
    assert.deepEqual(final.files.map((f: any) => f.path), ['model.json', 'group1-shard1of1.bin'])

    const candidate = await json(['checkpoint', 'show', checkpoints.candidate.cid])
    assert.deepEqual(candidate.anchor, { status: 'candidate', attesters: ['validator-1.test'], candidates: 1 })
    const unanchored = await json(['checkpoint', 'show', checkpoints.unanchored.cid])
    assert.deepEqual(unanchored.anchor, { status: 'not-anchored', detail: 'no attestation on chain for job show-job round 2' })
    const unreachable = await json(['checkpoint', 'show', checkpoints.final.cid, '--chain', 'custom', '--contract', 'nearai.test', '--rpc-url', 'http://127.0.0.1:9'])
    assert.equal(unreachable.anchor.status, 'chain-unreachable')

    const text = await runCliWith(process.execPath, ['--home', home, 'checkpoint', 'show', checkpoints.candidate.cid])
    assert.equal(text.code, 0, text.stderr)
    assert.match(text.stdout, /^job {7}show-job$/m)
    assert.match(text.stdout, /^round {5}1$/m)
    assert.match(text.stdout, new RegExp(`^weights {3}sha256 ${checkpoints.candidate.sha}, `, 'm'))
    assert.match(text.stdout, /^anchor {4}candidate, not final yet \(attested by validator-1\.test; 1 candidate\(s\) for the round\)$/m)
  })

  it('checkpoint verify prints its outcome as one JSON document', async () => {
    const verified = await json(['checkpoint', 'verify', checkpoints.final.cid], { network: true })
    assert.deepEqual([verified.cid, verified.ok, verified.job, verified.round, verified.weightsSha256], [checkpoints.final.cid, true, 'show-job', 0, checkpoints.final.sha])
    const r = await runCliWith(process.execPath, ['--home', home, '--log-level', 'error', 'checkpoint', 'verify', checkpoints.candidate.cid, '--json'])
    assert.equal(r.code, 2, 'exit 2 when it does not match')
    assert.equal(JSON.parse(r.stdout).ok, false)
  })
})
