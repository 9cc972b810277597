/**
 * Validators that do not train, end to end on 127.0.0.1: two training peers (`nearai node start --job`, no chain
 * account: they do not attest) train an MNIST job; three `nearai validator start` processes follow it, one of
 * them started late, and a faulty fourth validator (this test, through the Ledger) attests a wrong weights hash
 * for every checkpoint round. Everything is read back from the chain and checked against what the trainers
 * logged and an evaluation recomputed here.
 */
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { CID } from 'multiformats/cid'
import { devPublicKey, devSecretKey, openLedger, type Ledger, type RoundAnchors } from '../../node/chain/index.ts'
import { verifyCheckpoint } from '../../node/checkpoints/verify.ts'
import { createJob } from '../../node/job/job-ref.ts'
import type { PeerNode } from '../../node/network/peer-node.ts'
import { getCheckpoint, type FetchedCheckpoint } from '../../node/storage/checkpoints.ts'
import { evaluateDeterministic } from '../../node/training/deterministic-eval.ts'
import { checkpointWeights } from '../../node/validator/checkpoint-check.ts'
import { loadEvaluationSet } from '../../node/validator/evaluation-set.ts'
import { checkpointRounds } from '../../node/validator/job-validator.ts'
import { onChainJob } from '../../node/validator/job-requirements.ts'
import {
  addMnistDatasets, initPeerHome, mnistJobSpec, provideWhenPeered, setPeerChainAccount, startLocalBootstrap, startLocalChain,
  startPeerProcess, startValidatorProcess, type LocalChain
} from '../../node/demo/local-network.ts'
import type { LogLine, PeerProcess } from '../../node/demo/peer-process.ts'
import type { JobSpec } from '../../node/training/job-spec.ts'
import { removeDir } from '../helpers/temp-dir.ts'

const CONTRACT = 'nearai.test'
const HONEST = ['validator-1.test', 'validator-2.test', 'validator-3.test']
const FAULTY = 'validator-4.test'
const WRONG_HASH = 'f'.repeat(64)

describe('validators that do not train: every checkpoint anchor finalizes', function () {
  this.timeout(240_000)
  let dir: string
  let chain: LocalChain
  let boot: PeerNode
  let owner: Ledger
  let faulty: Ledger
  let spec: JobSpec
  const trainers: PeerProcess[] = []
  const validators: PeerProcess[] = []
  const rounds = new Map<number, RoundAnchors | null>()
  const checkpoints = new Map<number, FetchedCheckpoint>()
  const faultyVotes: Array<Promise<unknown>> = []
  const faultyRounds = new Set<number>()
  let keep = false

  before(async function () {
    dir = await mkdtemp(join(tmpdir(), 'nearai-validators-'))
    chain = await startLocalChain(dir, [FAULTY])
    owner = await openLedger({ network: 'custom', rpcUrl: chain.url, accountId: 'alice.test', contractId: CONTRACT, secretKey: devSecretKey('alice.test') })
    faulty = await openLedger({ network: 'custom', rpcUrl: chain.url, accountId: FAULTY, contractId: CONTRACT, secretKey: devSecretKey(FAULTY) })
    boot = await startLocalBootstrap(dir, pino({ level: 'silent' }))
    const data = await addMnistDatasets(boot, dir, { trainDigits: 2000, shards: 4 })
    spec = mnistJobSpec(data, { rounds: 4, checkpointEvery: 2, inner: { steps: 10, lr: 1e-3, weightDecay: 0.01, batchSize: 64 }, eval: { every: 1, maxSamples: 500 } })
    const specPath = join(dir, 'job.json')
    await writeFile(specPath, JSON.stringify(spec))
    const { specCid } = await createJob(join(dir, 'bootstrap-home'), boot.helia, spec)
    // Four validators, threshold 3: the three honest ones must all agree, the faulty one is outvoted.
    await owner.storageDeposit()
    await owner.createJob(onChainJob(spec, specCid, [...HONEST, FAULTY], 3))
    await faulty.storageDeposit()
    const provided = provideWhenPeered(boot, data.roots).catch(() => 0)

    for (let i = 0; i < 2; i++) {
      const home = join(dir, `trainer-${i}`)
      await initPeerHome(home, boot.multiaddrs[0])
      const p = startPeerProcess(`trainer-${i}`, home, specPath, ['--join-wait', '3', '--linger', '40'])
      trainers.push(p)
      p.onLog((line: LogLine) => {
        if (line.event !== 'round' || line.checkpoint !== true || typeof line.stateCid !== 'string') return
        const round = Number(line.round)
        if (faultyRounds.has(round)) return
        faultyRounds.add(round)
        // The faulty validator: as soon as a checkpoint round is announced, it attests the right CID with a wrong hash.
        faultyVotes.push(faulty.attest({ job: spec.id, round, checkpointCid: line.stateCid, weightsSha256: WRONG_HASH, contributionsRoot: '0'.repeat(64), contributionsTotal: 64, evalLoss: 0.5 }).catch((err: Error) => err))
        // Keep the checkpoint here while its trainers serve it, for the independent checks below.
        void getCheckpoint(boot.helia, CID.parse(line.stateCid), { timeoutMs: 60_000 }).then(c => { checkpoints.set(round, c) }, () => {})
      })
    }
    const validatorHome = async (i: number): Promise<string> => {
      const home = join(dir, `validator-${i + 1}`)
      await initPeerHome(home, boot.multiaddrs[0])
      await setPeerChainAccount(home, { rpcUrl: chain.url, accountId: HONEST[i], contractId: CONTRACT, secretKey: devSecretKey(HONEST[i]), publicKey: devPublicKey(HONEST[i]) })
      return home
    }
    // Two validators from the start, following the job by its id on chain (the spec comes from IPFS by the chain's CID).
    for (let i = 0; i < 2; i++) validators.push(startValidatorProcess(`validator-${i + 1}`, await validatorHome(i), spec.id))
    // The third starts once the first checkpoint round is done: it never hears that round's announcement.
    const lateHome = await validatorHome(2)
    await trainers[0].waitFor(l => l.event === 'round' && l.checkpoint === true, 150_000, 'the first checkpoint round')
    validators.push(startValidatorProcess('validator-3', lateHome, spec.id))

    const codes = await Promise.all(validators.map(async v => await Promise.race([v.exited, new Promise(resolve => setTimeout(() => resolve('timeout'), 150_000))])))
    if (codes.some(c => c !== 0)) {
      keep = true
      throw new Error(`validators exited with ${JSON.stringify(codes)}; last lines: ${JSON.stringify(validators.map(v => v.logs.filter(l => l.level >= 40 || l.event != null).slice(-5)))}`)
    }
    await Promise.all(faultyVotes)
    for (const round of checkpointRounds(spec.rounds, spec.checkpointEvery)) rounds.set(round, await owner.getAnchor(spec.id, round))
    await provided
  })

  after(async function () {
    for (const p of [...trainers, ...validators]) p.kill('SIGKILL')
    await Promise.all([...trainers, ...validators].map(async p => await p.exited))
    await owner?.close()
    await faulty?.close()
    await boot?.stop()
    await chain?.close()
    if (keep || this.currentTest?.state === 'failed') console.log(`      kept ${dir} (every process's log: */node.log)`)
    else await removeDir(dir)
  })

  it('three non-training validators attest every checkpoint round and every anchor finalizes with all three', async () => {
    assert.deepEqual([...rounds.keys()], [1, 3])
    for (const [round, anchors] of rounds) {
      const final = anchors?.final
      assert.ok(final != null, `round ${round} is final on chain: ${JSON.stringify(anchors)}`)
      assert.deepEqual([...final.attesters].sort(), HONEST, `round ${round}: the three honest validators attested the final anchor`)
      // The anchor names what the trainers published, checked against their own logs.
      const trained = trainers.flatMap(t => t.rounds()).filter(l => Number(l.round) === round)
      assert.ok(trained.length > 0, `the trainers logged round ${round}`)
      assert.ok(trained.every(l => l.hash === final.weights_sha256), `round ${round}: the anchored weights hash is the one every trainer reached`)
      assert.ok(trained.every(l => l.stateCid === final.checkpoint_cid), `round ${round}: every trainer published the anchored CID`)
    }
    // No trainer attested: they have no chain account.
    assert.ok(trainers.every(t => !t.logs.some(l => l.event === 'attestation')))
    // Each validator logged a verified checkpoint per round it attested, and exited on its own after the last one.
    for (const v of validators) assert.ok(v.logs.some(l => l.event === 'validator-done'), `${v.name} finished the job`)
    // The late validator found round 1 without hearing its announcement (parent links or the chain's candidates).
    const late = validators[2].logs.find(l => l.event === 'validator-check' && l.round === 1)
    assert.ok(late != null && late.from !== 'announcement', `the late validator found round 1 through ${String(late?.from)}`)
  })

  it('the attested eval loss is the deterministic evaluation of the anchored checkpoint, recomputed here', async () => {
    const evalSet = await loadEvaluationSet(boot.helia, spec, { timeoutMs: 30_000 })
    for (const [round, anchors] of rounds) {
      const checkpoint = checkpoints.get(round) ?? await getCheckpoint(boot.helia, CID.parse(anchors!.final!.checkpoint_cid), { timeoutMs: 30_000 })
      assert.equal(checkpoint.cid.toString(), anchors!.final!.checkpoint_cid)
      const expected = evaluateDeterministic(spec.model, checkpointWeights(spec, checkpoint), evalSet)
      assert.equal(anchors!.final!.eval_loss, expected.loss, `round ${round}: same bits`)
      const verified = await verifyCheckpoint(boot.helia, owner, checkpoint.cid, { timeoutMs: 30_000 })
      assert.ok(verified.ok, JSON.stringify(verified))
    }
  })

  it('the validators scored every contributor of every checkpoint round from its committed update: the honest trainers helped, with the same loss change at every validator', async () => {
    const trainerIds = new Set(trainers.flatMap(t => t.rounds().flatMap(l => (l.contributions as Array<{ peer: string }>).map(c => c.peer))))
    assert.equal(trainerIds.size, 2)
    for (const round of rounds.keys()) {
      const logged = validators.map(v => v.logs.find(l => l.event === 'validator-scores' && l.round === round))
      // The two validators that followed from the start scored it; the late one did when the round's parent state
      // still reached it (a scoring fetch gives up after 20 s: then it logs why, unscored).
      for (const [i, l] of logged.entries()) {
        assert.ok(l != null, `${validators[i].name} logged its scoring of round ${round}`)
        if (i < 2) assert.equal(l.scored, true, `${validators[i].name} scored round ${round}: ${JSON.stringify(l)}`)
        else if (l.scored !== true) assert.match(String(l.why), /could not be fetched/)
      }
      const byValidator = logged.filter(l => l?.scored === true).map(l => l!.scores as Array<{ peer: string, verdict: string, delta: number }>)
      for (const scores of byValidator) {
        assert.deepEqual(scores.map(s => s.peer).sort(), [...trainerIds].sort(), `round ${round}: every contributor scored`)
        assert.ok(scores.every(s => s.verdict === 'helpful' && s.delta < 0), `round ${round}: ${JSON.stringify(scores)}`)
      }
      // Separate processes, each with its own fetch of the parent state and of every update part: the same bits.
      for (const other of byValidator.slice(1)) assert.deepEqual(other, byValidator[0])
      const committed = checkpoints.get(round)?.manifest.contributions
      if (committed != null) assert.ok(committed.every(c => c.update?.length === checkpoints.get(round)!.manifest.updates?.parts.length), 'the checkpoint commits to each update')
    }
  })

  it('a validator that attests a wrong hash is outvoted: the anchor finalizes and its vote is recorded as dissent', async () => {
    for (const [round, anchors] of rounds) {
      assert.notEqual(anchors!.final!.weights_sha256, WRONG_HASH)
      assert.deepEqual(anchors!.dissent.map(d => [d.validator, d.weights_sha256]), [[FAULTY, WRONG_HASH]], `round ${round}: the faulty vote is dissent`)
      assert.equal(anchors!.candidates.length, 2, `round ${round}: the faulty claim stays on chain as a candidate`)
    }
    const latest = await owner.latestAnchor(spec.id)
    assert.equal(latest?.round, 3)
    assert.equal((await owner.getJob(spec.id))?.latest_final_round, 3)
  })
})
