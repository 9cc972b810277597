/**
 * Trainer bonds through the node's Ledger on the embedded dev chain and through the `nearai` CLI: register,
 * report by the job's threshold of validators, slashed; the bond check a peer runs before training.
 */
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  ContractLedger, DevChain, DevChainLedger, LedgerCallError, NearLedger, TrainerNotRegisteredError, checkTrainerBond, devSecretKey, formatNear,
  openLedger, parseNear, registeredTrainers, requireTrainerRegistration, startRpcServer
} from '../../node/chain/index.ts'
import { NodeConfig } from '../../node/config/schema.ts'
import { silentLogger } from '../../node/log/logger.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { runCli } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'
import { devGenesis } from './helpers.ts'
import { TrainerKeys } from '../helpers/trainer-keys.ts'

const NEAR = 10n ** 24n
const keys = new TrainerKeys()
const peer = (i: number): string => keys.peer(String(i))
/** registerTrainer's input for `ledger`'s account, signed by peer `i`'s key. */
const reg = async (ledger: { contractId: string, accountId: string }, job: string, i: number, bondYocto: bigint): Promise<{ job: string, peerId: string, peerSignature: string, bondYocto: bigint }> =>
  ({ job, ...await keys.signed(String(i), ledger.contractId, job, ledger.accountId), bondYocto })
const VALIDATORS = ['validator-1.test', 'validator-2.test', 'validator-3.test']
const EVAL = 'bafyreihsu2cunbgsjnxsv6s2dd2gtkdbiq23tyjuh7wlkbsjs35ztw2jdi'
const DATA = 'bafyreidwl7hrnylfystqgg5yf6qklfndkl4sbnqhqhztk62wyanfg7ce7a'

describe('trainer bonds through the Ledger on the dev chain', function () {
  this.timeout(60_000)
  before(async () => { await keys.make(...Array.from({ length: 13 }, (_, i) => String(i))) })
  let chain: DevChain
  const as = (accountId: string): DevChainLedger => new DevChainLedger({ chain, accountId })

  before(async () => {
    chain = await DevChain.open({ genesis: await devGenesis() })
    for (const a of ['alice.test', 'bob.test', 'carol.test', ...VALIDATORS]) await as(a).storageDeposit()
    await as('alice.test').createJob({ job: 'bonded', specCid: 'bafyspec', evalCid: 'bafyeval', validators: VALIDATORS, threshold: 2, trainerBondYocto: 2n * NEAR, unbondingBlocks: 3 })
    await as('alice.test').createJob({ job: 'open', specCid: 'bafyspec', evalCid: 'bafyeval', validators: VALIDATORS, threshold: 2 })
  })
  after(() => { chain.close() })

  it('register, reports by the threshold of validators, slashed: the peer leaves the trainer set and loses its reward eligibility', async () => {
    const job = await as('bob.test').getJob('bonded')
    assert.deepEqual([job?.trainer_bond, job?.unbonding_blocks], [(2n * NEAR).toString(), 3])
    await assert.rejects(as('bob.test').registerTrainer(await reg(as('bob.test'), 'bonded', 1, NEAR)), (e: Error) => e instanceof LedgerCallError && /requires a trainer bond of 2000000000000000000000000 yoctoNEAR/.test(e.message))
    const bob = await as('bob.test').registerTrainer(await reg(as('bob.test'), 'bonded', 1, 2n * NEAR))
    assert.deepEqual([bob.account_id, bob.peer_id, bob.status], ['bob.test', peer(1), 'active'])
    await as('carol.test').registerTrainer(await reg(as('carol.test'), 'bonded', 2, 2n * NEAR))
    assert.deepEqual([...(await registeredTrainers(as('alice.test'), 'bonded')) ?? []].sort(), [peer(1), peer(2)].sort())
    assert.equal(await registeredTrainers(as('alice.test'), 'not-on-chain'), null)
    assert.equal(await as('alice.test').rewardEligible('bonded', peer(1)), true)

    await assert.rejects(as('alice.test').reportCheat({ job: 'bonded', accountId: 'bob.test', round: 2, reason: 'x' }), /alice\.test is not a validator of job bonded/)
    const one = await as('validator-1.test').reportCheat({ job: 'bonded', accountId: 'bob.test', round: 2, reason: 'update does not match the shard' })
    assert.equal(one.status, 'active', 'one report is below the threshold')
    assert.equal((await registeredTrainers(as('alice.test'), 'bonded'))?.has(peer(1)), true)
    const two = await as('validator-3.test').reportCheat({ job: 'bonded', accountId: 'bob.test', round: 5, reason: 'update does not match the shard' })
    assert.equal(two.status, 'slashed')
    assert.deepEqual(two.reports.map(r => [r.validator, r.round]), [['validator-1.test', 2], ['validator-3.test', 5]])
    assert.deepEqual([...(await registeredTrainers(as('alice.test'), 'bonded')) ?? []], [peer(2)])
    assert.equal(await as('alice.test').rewardEligible('bonded', peer(1)), false)
    assert.equal((await as('alice.test').getTrainerByPeer('bonded', peer(1)))?.status, 'slashed')
    await assert.rejects(as('bob.test').withdrawBond('bonded'), /was slashed on job bonded: its bond is burnt/)
  })

  it('the training check: refuses an unregistered account, another peer id, a slashed or leaving trainer; passes a registered one and open jobs', async () => {
    await assert.rejects(requireTrainerRegistration(as('dave.test'), 'bonded', peer(4)),
      (e: Error) => e instanceof TrainerNotRegisteredError && e.message.includes('requires a trainer bond of 2 NEAR: account dave.test is not registered') &&
        e.message.includes('nearai job register-trainer --job bonded --bond 2'))
    await assert.rejects(requireTrainerRegistration(as('dave.test'), 'bonded', peer(2)), /peer id .* is registered by carol\.test, not by dave\.test/)
    await assert.rejects(requireTrainerRegistration(as('carol.test'), 'bonded', peer(9)), /registered on job bonded with peer id .*, but this node is/)
    await assert.rejects(requireTrainerRegistration(as('bob.test'), 'bonded', peer(1)), /bob\.test was slashed on job bonded/)
    assert.equal((await requireTrainerRegistration(as('carol.test'), 'bonded', peer(2))).kind, 'registered')
    assert.equal((await requireTrainerRegistration(as('dave.test'), 'open', peer(4))).kind, 'open')
    assert.equal((await requireTrainerRegistration(as('dave.test'), 'nowhere', peer(4))).kind, 'not-on-chain')

    // Leaving: the bond stays slashable through the delay, then comes back exactly.
    await as('eve.test').storageDeposit()
    await as('eve.test').registerTrainer(await reg(as('eve.test'), 'bonded', 5, 2n * NEAR))
    const left = await as('eve.test').deregisterTrainer('bonded')
    assert.equal(left.withdrawable_at_block, (left.unbonding_at_block ?? -1) + 3)
    await assert.rejects(requireTrainerRegistration(as('eve.test'), 'bonded', peer(5)), /deregistered from job bonded/)
    await assert.rejects(as('eve.test').withdrawBond('bonded'), /unlocks at block/)
    while (chain.head.height + 1n < BigInt(left.withdrawable_at_block ?? 0)) await as('alice.test').storageDeposit(1n) // each transaction is a block
    const done = await as('eve.test').withdrawBond('bonded')
    assert.equal(done.bond, (2n * NEAR).toString())
    assert.equal(await as('eve.test').getTrainer('bonded'), null)
  })

  it('the same calls through near-api-js (NearLedger) against the dev chain\'s JSON-RPC, withdrawal with its 1 yocto included', async () => {
    const server = await startRpcServer({ chain, host: '127.0.0.1', port: 0 })
    try {
      const near = (accountId: string): NearLedger => new NearLedger({ rpcUrl: server.url, accountId, secretKey: devSecretKey(accountId), contractId: 'nearai.test' })
      await near('alice.test').createJob({ job: 'rpc-bonded', specCid: 'bafyspec', evalCid: 'bafyeval', validators: VALIDATORS, threshold: 1, trainerBondYocto: NEAR, unbondingBlocks: 1 })
      const dave = near('dave.test')
      await dave.storageDeposit()
      assert.equal((await dave.registerTrainer(await reg(dave, 'rpc-bonded', 11, NEAR))).status, 'active')
      assert.equal((await near('carol.test').registerTrainer(await reg(near('carol.test'), 'rpc-bonded', 12, NEAR))).status, 'active')
      assert.equal((await near('validator-2.test').reportCheat({ job: 'rpc-bonded', accountId: 'carol.test', round: 0, reason: 'r' })).status, 'slashed', 'threshold 1: one report slashes')
      assert.deepEqual((await dave.getTrainers('rpc-bonded'))?.map(t => [t.account_id, t.status]), [['dave.test', 'active'], ['carol.test', 'slashed']])
      await dave.deregisterTrainer('rpc-bonded')
      const before = chain.viewAccount('dave.test').amount
      assert.equal((await dave.withdrawBond('rpc-bonded')).bond, NEAR.toString())
      assert.equal(chain.viewAccount('dave.test').amount - before, NEAR - 1n, 'the bond came back, less the 1 yocto confirmation')
    } finally { await server.close() }
  })

  it('checkTrainerBond opens the configured chain: skipped without an account on the embedded chain, enforced with one', async () => {
    const home = await mkdtemp(join(tmpdir(), 'nearai-bond-gate-'))
    try {
      const ledger = await openLedger({ network: 'dev', home, accountId: 'alice.test' })
      await ledger.storageDeposit()
      await ledger.createJob({ job: 'gated', specCid: 'bafyspec', evalCid: 'bafyeval', validators: VALIDATORS, threshold: 1, trainerBondYocto: NEAR })
      await ledger.close()
      const config = (chain: Record<string, unknown>): NodeConfig['chain'] => NodeConfig.parse({ chain }).chain
      assert.equal(await checkTrainerBond(config({}), home, 'gated', peer(7), silentLogger()), undefined)
      await assert.rejects(checkTrainerBond(config({ accountId: 'bob.test' }), home, 'gated', peer(7), silentLogger()), /account bob\.test is not registered as its trainer. Register this node first: nearai job register-trainer --job gated --bond 1/)
      const bob = await openLedger({ network: 'dev', home, accountId: 'bob.test' })
      await bob.storageDeposit()
      await bob.registerTrainer(await reg(bob, 'gated', 7, NEAR))
      await bob.close()
      assert.equal((await checkTrainerBond(config({ accountId: 'bob.test' }), home, 'gated', peer(7), silentLogger()))?.kind, 'registered')
      // A ledger that cannot be opened (here: no credentials) is warned about, as the attester does, not fatal.
      assert.equal(await checkTrainerBond(config({ network: 'testnet', accountId: 'x.testnet', contractId: 'c.testnet', credentialsFile: join(home, 'missing.json') }), home, 'gated', peer(7), silentLogger()), undefined)
    } finally { await removeDir(home) }
  })

  it('rejects malformed trainer results with InvalidMessageError; NEAR amounts convert exactly', async () => {
    class Fake extends ContractLedger {
      readonly accountId = 'a.test'
      readonly contractId = 'c.test'
      constructor (private readonly reply: unknown) { super() }
      protected async call (): Promise<unknown> { return this.reply }
      protected async view (): Promise<unknown> { return this.reply }
      async close (): Promise<void> {}
    }
    const good = { job: 'j', account_id: 'b.test', peer_id: peer(1), bond: '1', status: 'active', registered_at_block: 1, unbonding_at_block: null, withdrawable_at_block: null, slashed_at_block: null, reports: [] }
    assert.equal((await new Fake(good).getTrainer('j'))?.peer_id, peer(1))
    await assert.rejects(new Fake({ ...good, peer_id: 'nope' }).getTrainer('j'), InvalidMessageError)
    await assert.rejects(new Fake({ ...good, status: 'gone' }).registerTrainer({ job: 'j', peerId: peer(1), peerSignature: '00'.repeat(64), bondYocto: 1n }), InvalidMessageError)
    await assert.rejects(new Fake({ ...good, bond: 1 }).reportCheat({ job: 'j', accountId: 'b.test', round: 1, reason: 'r' }), InvalidMessageError)
    await assert.rejects(new Fake({ job: 'j', total: 1, trainers: [{ ...good, reports: [{ validator: 'v.test' }] }] }).getTrainers('j'), InvalidMessageError)
    await assert.rejects(new Fake('yes').rewardEligible('j', peer(1)), InvalidMessageError)
    assert.equal(parseNear('1.5'), 1_500_000_000_000_000_000_000_000n)
    assert.equal(parseNear('0.000000000000000000000001'), 1n)
    assert.throws(() => parseNear('1e3'), RangeError)
    assert.equal(formatNear(1_500_000_000_000_000_000_000_000n), '1.5')
    assert.equal(formatNear('0'), '0')
  })
})

describe('nearai job register-trainer / trainers / validator report-cheat / job withdraw-bond', function () {
  this.timeout(120_000)
  let dir: string
  let home: string
  let homePeerId: string
  const quiet = ['--log-level', 'warn']
  const cli = async (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> => await runCli(['--home', home, ...quiet, ...args])

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-bond-cli-'))
    home = join(dir, 'home')
    const init = await runCli(['--home', home, 'init'])
    assert.equal(init.code, 0)
    homePeerId = /Peer id: (\S+)/.exec(init.stdout)?.[1] ?? ''
    // The job goes on chain with its bond through `job create` (the datasets need not exist: --skip-dataset-check).
    const spec = join(dir, 'spec.json')
    await writeFile(spec, JSON.stringify({ id: 'cli-bonded', model: { kind: 'mlp', inputs: 784, hidden: [16], classes: 10 }, dataset: DATA, evalDataset: EVAL, rounds: 2 }))
    const created = await runCli(['--home', home, ...quiet, 'job', 'create', '--skip-dataset-check', '--spec', spec, '--validators', VALIDATORS.join(','), '--threshold', '2', '--trainer-bond', '0.5'])
    assert.equal(created.code, 0, created.stderr)
    assert.match(created.stdout, /trainers must register with a bond of 0\.5 NEAR \(`nearai job register-trainer --job cli-bonded`\); unbonding delay 86400 blocks/)
  })
  after(async () => { await removeDir(dir) })

  it('registers this home\'s peer id with the bond, lists it, and slashes it once two validators reported it', async () => {
    const noAccount = await cli('job', 'register-trainer', '--job', 'cli-bonded')
    assert.equal(noAccount.code, 1)
    assert.match(noAccount.stderr, /nearai job register-trainer signs a transaction: set chain\.accountId \(or --account\)/)
    const tooLittle = await cli('job', 'register-trainer', '--job', 'cli-bonded', '--account', 'bob.test', '--bond', '0.1')
    assert.equal(tooLittle.code, 1)
    assert.match(tooLittle.stderr, /job cli-bonded requires a bond of 0\.5 NEAR; --bond 0\.1 is less/)

    const reg = await cli('job', 'register-trainer', '--job', 'cli-bonded', '--account', 'bob.test', '--json')
    assert.equal(reg.code, 0, reg.stderr)
    const registered = JSON.parse(reg.stdout)
    assert.deepEqual([registered.account, registered.peerId, registered.bondYocto, registered.status], ['bob.test', homePeerId, (NEAR / 2n).toString(), 'active'], 'the home\'s own peer id is bound')

    const report = async (validator: string): Promise<{ code: number | null, stdout: string, stderr: string }> =>
      await cli('validator', 'report-cheat', '--job', 'cli-bonded', '--trainer', 'bob.test', '--round', '3', '--reason', 'gradient from another shard', '--account', validator)
    const first = await report('validator-1.test')
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /1 report\(s\) so far: validator-1\.test/)
    const second = await report('validator-2.test')
    assert.equal(second.code, 0, second.stderr)
    assert.match(second.stdout, /its bond is burnt and it is slashed/)

    const list = await cli('job', 'trainers', '--job', 'cli-bonded')
    assert.equal(list.code, 0, list.stderr)
    assert.match(list.stdout, /^job cli-bonded: trainer bond 0\.5 NEAR, unbonding delay 86400 blocks, 1 trainer\(s\)$/m)
    assert.match(list.stdout, new RegExp(`^bob\\.test\\t${registered.peerId as string}\\tbond 0\\.5 NEAR\\tslashed, slashed at block \\d+; reported by validator-1\\.test \\(round 3: gradient from another shard\\), validator-2\\.test`, 'm'))
    const withdraw = await cli('job', 'withdraw-bond', '--job', 'cli-bonded', '--account', 'bob.test')
    assert.equal(withdraw.code, 1)
    assert.match(withdraw.stderr, /bob\.test was slashed on job cli-bonded: its bond is burnt/)
  })
})
