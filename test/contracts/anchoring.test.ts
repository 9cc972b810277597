import assert from 'node:assert/strict'
import { world, anchorArgs, hex32, NEAR, CallFailed, TGAS } from './helpers.ts'

const failMessage = (err: unknown): string => err instanceof CallFailed ? err.message : String(err)
const EVAL = 'bafyevalset'
const eventsOf = (outcome: { receipts: Array<{ logs: string[] }> }, event: string): any[] =>
  outcome.receipts.flatMap(r => r.logs).filter(l => l.startsWith('EVENT_JSON:')).map(l => JSON.parse(l.slice('EVENT_JSON:'.length))).filter(e => e.event === event)

async function setup (threshold = 2) {
  const w = await world()
  for (const a of ['alice.test', 'bob.test', 'carol.test', 'dave.test', 'eve.test']) await w.call(a, 'storage_deposit', {}, { deposit: NEAR / 10n })
  await w.call('alice.test', 'create_job', { job: 'mnist-1', spec_cid: 'bafyspec', eval_cid: EVAL, validators: ['bob.test', 'carol.test', 'dave.test'], threshold })
  return w
}

describe('contract: jobs and checkpoint anchors (compiled wasm in the harness)', () => {
  it('create_job stores the job, returns JSON and emits a NEP-297 event', async () => {
    const w = await world()
    await w.call('alice.test', 'storage_deposit', {}, { deposit: NEAR / 10n })
    const { value, outcome } = await w.call('alice.test', 'create_job', { job: 'j1', spec_cid: 'bafyspec', eval_cid: EVAL, validators: ['bob.test'], threshold: 1 })
    assert.equal(value.owner, 'alice.test')
    assert.equal(value.eval_cid, EVAL)
    assert.deepEqual(await w.view('get_job', { job: 'j1' }), { ...value })
    assert.equal((await w.view('get_job', { job: 'j1' })).latest_final_round, null)
    const ev = outcome.receipts[0].logs.find(l => l.startsWith('EVENT_JSON:'))
    assert.ok(ev != null)
    const parsed = JSON.parse(ev.slice('EVENT_JSON:'.length))
    assert.deepEqual([parsed.standard, parsed.event, parsed.data[0].job], ['nearai', 'job_created', 'j1'])
    assert.equal(await w.view('get_job', { job: 'nope' }), null)
    await assert.rejects(w.call('alice.test', 'create_job', { job: 'j1', spec_cid: 'x', eval_cid: EVAL, validators: ['bob.test'], threshold: 1 }), /already exists/)
    await assert.rejects(w.call('alice.test', 'create_job', { job: 'j2', spec_cid: 'x', eval_cid: EVAL, validators: ['bob.test'], threshold: 2 }), /threshold/)
  })

  it('create_job requires an evaluation set, named by a CID', async () => {
    const w = await world()
    await w.call('alice.test', 'storage_deposit', {}, { deposit: NEAR / 10n })
    await assert.rejects(w.call('alice.test', 'create_job', { job: 'j1', spec_cid: 'bafyspec', validators: ['bob.test'], threshold: 1 }), /missing argument: eval_cid/)
    await assert.rejects(w.call('alice.test', 'create_job', { job: 'j1', spec_cid: 'bafyspec', eval_cid: 'not a cid', validators: ['bob.test'], threshold: 1 }), /eval_cid must be a base-encoded CID/)
    await assert.rejects(w.call('alice.test', 'create_job', { job: 'j1', spec_cid: 'bafyspec', eval_cid: 7, validators: ['bob.test'], threshold: 1 }), /eval_cid must be a string/)
    assert.equal(await w.view('get_job', { job: 'j1' }), null)
  })

  it('an anchor becomes final only when the threshold of validators attested the same values', async () => {
    const w = await setup(2)
    const first = await w.call('bob.test', 'attest', anchorArgs('mnist-1', 1))
    assert.equal(first.value.final, null)
    assert.deepEqual(first.value.candidates[0].attesters, ['bob.test'])
    assert.equal(await w.view('latest_anchor', { job: 'mnist-1' }), null)
    const second = await w.call('carol.test', 'attest', anchorArgs('mnist-1', 1))
    assert.equal(second.value.final.checkpoint_cid, 'bafyckpt1')
    assert.deepEqual(second.value.final.attesters, ['bob.test', 'carol.test'])
    assert.ok(second.outcome.receipts[0].logs.some(l => l.includes('"event":"anchor_finalized"')))
    const latest = await w.view('latest_anchor', { job: 'mnist-1' })
    assert.deepEqual([latest.round, latest.checkpoint_cid, latest.eval_loss], [1, 'bafyckpt1', 0.5])
    assert.equal((await w.view('get_job', { job: 'mnist-1' })).latest_final_round, 1)
  })

  it('an account outside the validator set cannot attest', async () => {
    const w = await setup()
    await assert.rejects(w.call('eve.test', 'attest', anchorArgs('mnist-1', 1)), (e) => /is not a validator/.test(failMessage(e)))
    await assert.rejects(w.call('alice.test', 'attest', anchorArgs('mnist-1', 1)), /is not a validator/)
    assert.deepEqual(await w.view('get_attestations', { job: 'mnist-1', round: 1 }), [])
  })

  it('a validator cannot attest twice for a round, even with other values', async () => {
    const w = await setup()
    await w.call('bob.test', 'attest', anchorArgs('mnist-1', 1))
    await assert.rejects(w.call('bob.test', 'attest', anchorArgs('mnist-1', 1)), /already attested/)
    await assert.rejects(w.call('bob.test', 'attest', anchorArgs('mnist-1', 1, 'bafyother')), /already attested/)
    assert.equal((await w.view('get_attestations', { job: 'mnist-1', round: 1 })).length, 1)
    await w.call('bob.test', 'attest', anchorArgs('mnist-1', 2)) // another round is fine
  })

  it('conflicting attestations are recorded and do not finalize a wrong checkpoint', async () => {
    const w = await setup(2)
    await w.call('bob.test', 'attest', anchorArgs('mnist-1', 3, 'bafygood'))
    await w.call('carol.test', 'attest', anchorArgs('mnist-1', 3, 'bafyevil'))
    let anchor = await w.view('get_anchor', { job: 'mnist-1', round: 3 })
    assert.equal(anchor.final, null)
    assert.equal(anchor.candidates.length, 2)
    // same cid but another loss is a different claim, too
    await w.call('dave.test', 'attest', anchorArgs('mnist-1', 3, 'bafygood', 0.75))
    anchor = await w.view('get_anchor', { job: 'mnist-1', round: 3 })
    assert.equal(anchor.final, null)
    assert.equal(anchor.candidates.length, 3)
    const atts = await w.view('get_attestations', { job: 'mnist-1', round: 3 })
    assert.deepEqual(atts.map((a: any) => [a.validator, a.checkpoint_cid]), [['bob.test', 'bafygood'], ['carol.test', 'bafyevil'], ['dave.test', 'bafygood']])
    assert.equal(await w.view('latest_anchor', { job: 'mnist-1' }), null)
  })

  it('a validator that disagrees is outvoted: the anchor finalizes and its attestation is listed as dissent, with an event', async () => {
    const w = await setup(2)
    const wrong = { ...anchorArgs('mnist-1', 4), weights_sha256: hex32('f') }
    const early = await w.call('bob.test', 'attest', wrong)
    assert.deepEqual(early.value.dissent, [], 'no dissent before the round is final')
    await w.call('carol.test', 'attest', anchorArgs('mnist-1', 4))
    const { value, outcome } = await w.call('dave.test', 'attest', anchorArgs('mnist-1', 4))
    assert.deepEqual(value.final.attesters, ['carol.test', 'dave.test'])
    assert.equal(value.final.weights_sha256, hex32('a'))
    assert.deepEqual(value.dissent, [{ validator: 'bob.test', checkpoint_cid: 'bafyckpt1', weights_sha256: hex32('f'), contributions_root: hex32('b'), contributions_total: 100, eval_loss: 0.5 }])
    const events = eventsOf(outcome, 'attestation_dissent')
    assert.equal(events.length, 1)
    assert.deepEqual(events[0].data.map((d: any) => [d.validator, d.round, d.weights_sha256, d.final_weights_sha256]), [['bob.test', 4, hex32('f'), hex32('a')]])
    assert.deepEqual((await w.view('get_anchor', { job: 'mnist-1', round: 4 })).dissent, value.dissent, 'the view shows the same dissent')
    assert.equal((await w.view('latest_anchor', { job: 'mnist-1' })).weights_sha256, hex32('a'))
  })

  it('an attestation that disagrees after the round is final is recorded as dissent, and never moves the anchor', async () => {
    const w = await setup(2)
    await w.call('bob.test', 'attest', anchorArgs('mnist-1', 5))
    const final = await w.call('carol.test', 'attest', anchorArgs('mnist-1', 5))
    assert.equal(eventsOf(final.outcome, 'attestation_dissent').length, 0, 'no dissent when everyone agreed')
    const late = await w.call('dave.test', 'attest', anchorArgs('mnist-1', 5, 'bafyckpt1', 0.25))
    assert.equal(late.value.final.eval_loss, 0.5)
    assert.deepEqual(late.value.dissent.map((d: any) => [d.validator, d.eval_loss]), [['dave.test', 0.25]])
    const ev = eventsOf(late.outcome, 'attestation_dissent')
    assert.deepEqual(ev.map(e => e.data.map((d: any) => [d.validator, d.eval_loss, d.final_eval_loss])), [[['dave.test', 0.25, 0.5]]])
  })

  it('compares eval losses by their JSON text: the bits a validator computed, not a parsed approximation', async () => {
    const w = await setup(2)
    // Two float64 values one ulp apart, sent as JSON.stringify writes them.
    const a = 0.1 + 0.2
    const bits = new Float64Array([a])
    new BigUint64Array(bits.buffer)[0] += 1n
    const b = bits[0]
    assert.notEqual(a, b)
    await w.call('bob.test', 'attest', anchorArgs('mnist-1', 6, 'bafyckpt1', a))
    await w.call('carol.test', 'attest', anchorArgs('mnist-1', 6, 'bafyckpt1', b))
    let anchor = await w.view('get_anchor', { job: 'mnist-1', round: 6 })
    assert.equal(anchor.final, null)
    assert.deepEqual(anchor.candidates.map((c: any) => c.eval_loss), [a, b])
    await w.call('dave.test', 'attest', anchorArgs('mnist-1', 6, 'bafyckpt1', b))
    anchor = await w.view('get_anchor', { job: 'mnist-1', round: 6 })
    assert.equal(anchor.final.eval_loss, b)
    assert.deepEqual(anchor.dissent.map((d: any) => d.validator), ['bob.test'])
  })

  it('rejects malformed arguments with a message', async () => {
    const w = await setup()
    await assert.rejects(w.call('bob.test', 'attest', { ...anchorArgs('mnist-1', 1), weights_sha256: 'xyz' }), /weights_sha256/)
    await assert.rejects(w.call('bob.test', 'attest', { ...anchorArgs('mnist-1', 1), round: -1 }), /round/)
    await assert.rejects(w.call('bob.test', 'attest', anchorArgs('unknown', 1)), /unknown job/)
  })

  it('storage must be paid for: no deposit, no state; a too small deposit is rejected and reverts', async () => {
    const w = await world()
    await assert.rejects(w.call('alice.test', 'create_job', { job: 'j', spec_cid: 's', eval_cid: EVAL, validators: ['bob.test'], threshold: 1 }), /storage_deposit/)
    await assert.rejects(w.call('alice.test', 'storage_deposit', {}, { deposit: 1n }), /registration cost/)
    const min = BigInt((await w.view('storage_balance_bounds', {})).min)
    await w.call('alice.test', 'storage_deposit', {}, { deposit: min })
    const bal = await w.view('storage_balance_of', { account_id: 'alice.test' })
    assert.ok(BigInt(bal.available) < min)
    const validators = Array.from({ length: 20 }, (_, i) => `validator-${i}.test`)
    await assert.rejects(w.call('alice.test', 'create_job', { job: 'big', spec_cid: 's', eval_cid: EVAL, validators, threshold: 1 }), /insufficient storage balance/)
    assert.equal(await w.view('get_job', { job: 'big' }), null) // the panic reverted the write
    await w.call('alice.test', 'storage_deposit', {}, { deposit: NEAR / 10n })
    await w.call('alice.test', 'create_job', { job: 'big', spec_cid: 's', eval_cid: EVAL, validators, threshold: 1 })
    const after = await w.view('storage_balance_of', { account_id: 'alice.test' })
    assert.ok(BigInt(after.available) < BigInt(after.total))
    assert.equal(await w.view('storage_balance_of', { account_id: 'nobody.test' }), null)
  })

  it('storage_withdraw needs 1 yocto and sends the available balance back through a transfer receipt', async () => {
    const w = await world()
    await w.call('alice.test', 'storage_deposit', {}, { deposit: NEAR })
    const before = w.rt.account('alice.test')!.balance
    await assert.rejects(w.call('alice.test', 'storage_withdraw', {}), /exactly 1 yoctoNEAR/)
    const { value, outcome } = await w.call('alice.test', 'storage_withdraw', { amount: (NEAR / 2n).toString() }, { deposit: 1n })
    assert.equal(BigInt(value.total), NEAR / 2n)
    assert.equal(outcome.receipts.length, 2) // the call and its transfer
    assert.equal(w.rt.account('alice.test')!.balance, before - 1n + NEAR / 2n)
    await assert.rejects(w.call('alice.test', 'storage_withdraw', { amount: NEAR.toString() }, { deposit: 1n }), /exceeds/)
  })

  it('storage_unregister refunds an account holding nothing else, and refuses one that owns state', async () => {
    const w = await world()
    await w.call('bob.test', 'storage_deposit', {}, { deposit: NEAR })
    const before = w.rt.account('bob.test')!.balance
    assert.equal((await w.call('bob.test', 'storage_unregister', {}, { deposit: 1n })).value, true)
    assert.equal(w.rt.account('bob.test')!.balance, before - 1n + NEAR)
    assert.equal(await w.view('storage_balance_of', { account_id: 'bob.test' }), null)
    await w.call('alice.test', 'storage_deposit', {}, { deposit: NEAR })
    await w.call('alice.test', 'create_job', { job: 'kept', spec_cid: 's', eval_cid: EVAL, validators: ['bob.test'], threshold: 1 })
    await assert.rejects(w.call('alice.test', 'storage_unregister', {}, { deposit: 1n }), /still holds state/)
    assert.notEqual(await w.view('storage_balance_of', { account_id: 'alice.test' }), null)
  })

  it('views are JSON and cannot write state', async () => {
    const w = await setup()
    assert.deepEqual(await w.view('get_anchor', { job: 'mnist-1', round: 9 }), { job: 'mnist-1', round: 9, final: null, candidates: [], dissent: [] })
    assert.equal(await w.view('state_version', {}), '1')
    await assert.rejects(w.view('attest', anchorArgs('mnist-1', 1)), /ProhibitedInView|predecessor/)
  })

  it('a call that runs out of prepaid gas fails with the out-of-gas error', async () => {
    const w = await world()
    await assert.rejects(w.call('alice.test', 'spin', {}, { receiver: 'echo.test', gas: 1n * TGAS }), /Exceeded the prepaid gas/)
  })

  it('a loop without host calls is stopped by wasm metering, not left hanging', async () => {
    const w = await world()
    const started = Date.now()
    await assert.rejects(w.call('alice.test', 'spin_pure', {}, { receiver: 'echo.test', gas: 10n * TGAS }), /Exceeded the prepaid gas/)
    assert.ok(Date.now() - started < 5000)
  })
})
