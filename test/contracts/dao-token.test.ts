import assert from 'node:assert/strict'
import { world, daoWorld, eventLogs, NEAR, CONTRACT } from './helpers.ts'

const HOLDERS: Array<[string, bigint]> = [['alice.test', 1000n], ['bob.test', 500n], ['carol.test', 250n], [CONTRACT, 100n]]
const BYTE_COST = 10n ** 19n
const ONE_YOCTO = { deposit: 1n }

async function setup () {
  const w = await daoWorld(HOLDERS)
  const balance = async (a: string): Promise<bigint> => BigInt(await w.view('ft_balance_of', { account_id: a }))
  const supply = async (): Promise<bigint> => BigInt(await w.view('ft_total_supply', {}))
  const usedBytes = async (a: string): Promise<bigint> => {
    const b = await w.view('storage_balance_of', { account_id: a })
    return (BigInt(b.total) - BigInt(b.available)) / BYTE_COST
  }
  // the fixture contract at echo.test receives tokens through ft_on_transfer; alice pays its registration
  await w.call('alice.test', 'storage_deposit', { account_id: 'echo.test' }, { deposit: NEAR / 10n })
  return { ...w, balance, supply, usedBytes }
}

describe('contract: DAO token (NEP-141/148 in the compiled wasm)', () => {
  it('dao_init runs once, only for the contract account, and mints the initial distribution with nep141 ft_mint events', async () => {
    const w = await setup()
    const mints = eventLogs(w.init, 'nep141')
    assert.deepEqual(mints.map(e => [e.version, e.event, e.data]), HOLDERS.map(([a, n]) => ['1.0.0', 'ft_mint', [{ owner_id: a, amount: n.toString(), memo: 'dao_init' }]]))
    assert.equal(await w.supply(), 1850n)
    for (const [a, n] of HOLDERS) assert.equal(await w.balance(a), n)
    assert.equal(await w.balance('dave.test'), 0n)
    await assert.rejects(w.call('alice.test', 'dao_init', { initial: [['alice.test', '5']] }), /dao_init can only be called by the contract account itself/)
    await assert.rejects(w.call(CONTRACT, 'dao_init', { initial: [['alice.test', '5']] }), /dao_init already ran/)
    assert.equal(await w.supply(), 1850n)
    assert.deepEqual(await w.view('ft_metadata', {}), { spec: 'ft-1.0.0', name: 'NearAI DAO', symbol: 'NEARAI', icon: null, reference: null, reference_hash: null, decimals: 18 })
  })

  it('dao_init refuses an unregistered holder and takes custom metadata', async () => {
    const w = await world()
    await assert.rejects(w.call(CONTRACT, 'dao_init', { initial: [['alice.test', '5']] }), /receiver alice\.test is not registered/)
    await w.call('alice.test', 'storage_deposit', {}, { deposit: NEAR / 10n })
    await assert.rejects(w.call(CONTRACT, 'dao_init', { metadata: { decimals: 99 } }), /metadata\.decimals must be an integer 0\.\.24/)
    await w.call(CONTRACT, 'dao_init', { initial: [['alice.test', '5']], metadata: { name: 'Train Together', symbol: 'TT', decimals: 6 } })
    const m = await w.view('ft_metadata', {})
    assert.deepEqual([m.spec, m.name, m.symbol, m.decimals], ['ft-1.0.0', 'Train Together', 'TT', 6])
    assert.equal(await w.view('ft_total_supply', {}), '5')
  })

  it('ft_transfer moves exactly the amount, needs exactly 1 yoctoNEAR and logs a nep141 ft_transfer event', async () => {
    const w = await setup()
    await assert.rejects(w.call('alice.test', 'ft_transfer', { receiver_id: 'bob.test', amount: '10' }), /exactly 1 yoctoNEAR/)
    await assert.rejects(w.call('alice.test', 'ft_transfer', { receiver_id: 'bob.test', amount: '10' }, { deposit: 2n }), /exactly 1 yoctoNEAR/)
    assert.deepEqual([await w.balance('alice.test'), await w.balance('bob.test')], [1000n, 500n])
    const { value, outcome } = await w.call('alice.test', 'ft_transfer', { receiver_id: 'bob.test', amount: '123', memo: 'thanks' }, ONE_YOCTO)
    assert.equal(value, undefined)
    assert.deepEqual([await w.balance('alice.test'), await w.balance('bob.test')], [877n, 623n])
    const logs = outcome.receipts[0].logs
    assert.deepEqual(logs, ['EVENT_JSON:{"standard":"nep141","version":"1.0.0","event":"ft_transfer","data":[{"old_owner_id":"alice.test","new_owner_id":"bob.test","amount":"123","memo":"thanks"}]}'])
  })

  it('refuses overdrafts, zero, malformed and overflowing amounts, self transfers and unregistered receivers', async () => {
    const w = await setup()
    const t = async (amount: unknown, receiver = 'bob.test') => await w.call('alice.test', 'ft_transfer', { receiver_id: receiver, amount }, ONE_YOCTO)
    await assert.rejects(t('1001'), /alice\.test holds 1000 tokens, less than 1001/)
    await assert.rejects(t('0'), /amount must be positive/)
    await assert.rejects(t(5), /amount must be a decimal string/)
    await assert.rejects(t('1.5'), /amount must be a decimal string/)
    await assert.rejects(t('-1'), /amount must be a decimal string/)
    await assert.rejects(t(''), /amount must be a decimal string/)
    await assert.rejects(t((2n ** 128n).toString()), /amount overflows u128/)
    await assert.rejects(t('1'.repeat(40)), /amount must be a decimal string/)
    await assert.rejects(t('1', 'alice.test'), /sender and receiver must differ/)
    await assert.rejects(t('1', 'dave.test'), /receiver dave\.test is not registered/)
    // registered without room for a balance record (registration_only pays exactly the registration)
    await w.call('dave.test', 'storage_deposit', { registration_only: true }, { deposit: NEAR / 10n })
    await assert.rejects(t('1', 'dave.test'), /insufficient storage balance: dave\.test/)
    assert.deepEqual([await w.balance('alice.test'), await w.balance('bob.test'), await w.balance('dave.test')], [1000n, 500n, 0n])
    assert.equal(await w.supply(), 1850n)
  })

  it('a new holder pays for its balance record from its storage balance and gets it back when its balance returns to 0', async () => {
    const w = await setup()
    await w.call('dave.test', 'storage_deposit', {}, { deposit: NEAR / 10n })
    const before = await w.usedBytes('dave.test')
    await w.call('alice.test', 'ft_transfer', { receiver_id: 'dave.test', amount: '7' }, ONE_YOCTO)
    const record = BigInt('ft/b/dave.test'.length) + 16n + 40n
    assert.equal(await w.usedBytes('dave.test'), before + record)
    await assert.rejects(w.call('dave.test', 'storage_unregister', {}, ONE_YOCTO), /holds 7 DAO tokens/)
    await w.call('dave.test', 'ft_transfer', { receiver_id: 'alice.test', amount: '7' }, ONE_YOCTO)
    assert.equal(await w.usedBytes('dave.test'), before)
    assert.equal(await w.balance('dave.test'), 0n)
    const { value } = await w.call('dave.test', 'storage_unregister', {}, ONE_YOCTO)
    assert.equal(value, true)
  })

  it('ft_transfer_call: the receiver keeps what it used; the unused amount it returns is refunded', async () => {
    const w = await setup()
    await assert.rejects(w.call('alice.test', 'ft_transfer_call', { receiver_id: 'echo.test', amount: '100', msg: 'keep' }), /exactly 1 yoctoNEAR/)
    const kept = await w.call('alice.test', 'ft_transfer_call', { receiver_id: 'echo.test', amount: '100', msg: 'keep' }, ONE_YOCTO)
    assert.equal(kept.value, '100')
    assert.deepEqual([await w.balance('alice.test'), await w.balance('echo.test')], [900n, 100n])
    assert.deepEqual(kept.outcome.receipts.map(r => r.executorId), [CONTRACT, 'echo.test', CONTRACT])

    const partial = await w.call('alice.test', 'ft_transfer_call', { receiver_id: 'echo.test', amount: '100', msg: 'return:30' }, ONE_YOCTO)
    assert.equal(partial.value, '70')
    assert.deepEqual([await w.balance('alice.test'), await w.balance('echo.test')], [830n, 170n])
    assert.deepEqual(eventLogs(partial.outcome, 'nep141').map(e => e.data[0]), [
      { old_owner_id: 'alice.test', new_owner_id: 'echo.test', amount: '100' },
      { old_owner_id: 'echo.test', new_owner_id: 'alice.test', amount: '30', memo: 'refund' }
    ])
    // a receiver claiming more unused than it received gets at most the amount refunded
    const over = await w.call('alice.test', 'ft_transfer_call', { receiver_id: 'echo.test', amount: '10', msg: 'return:500' }, ONE_YOCTO)
    assert.equal(over.value, '0')
    assert.deepEqual([await w.balance('alice.test'), await w.balance('echo.test')], [830n, 170n])
    assert.equal(await w.supply(), 1850n)
  })

  it('ft_transfer_call refunds everything when the receiver panics or returns something that is not an amount', async () => {
    const w = await setup()
    const failed = await w.call('bob.test', 'ft_transfer_call', { receiver_id: 'echo.test', amount: '200', msg: 'panic' }, ONE_YOCTO)
    assert.equal(failed.value, '0')
    assert.ok('Failure' in failed.outcome.receipts[1].status)
    assert.match(JSON.stringify(failed.outcome.receipts[1].status), /the receiver refused the tokens/)
    assert.deepEqual([await w.balance('bob.test'), await w.balance('echo.test')], [500n, 0n])
    const garbage = await w.call('bob.test', 'ft_transfer_call', { receiver_id: 'echo.test', amount: '200', msg: 'garbage' }, ONE_YOCTO)
    assert.equal(garbage.value, '0')
    assert.deepEqual([await w.balance('bob.test'), await w.balance('echo.test')], [500n, 0n])
    // the callback is private
    await assert.rejects(w.call('bob.test', 'ft_resolve_transfer', { sender_id: 'bob.test', receiver_id: 'echo.test', amount: '1' }), /ft_resolve_transfer is private/)
    // a receiver that is not registered is refused before any call
    await assert.rejects(w.call('bob.test', 'ft_transfer_call', { receiver_id: 'relay.test', amount: '1', msg: 'keep' }, ONE_YOCTO), /receiver relay\.test is not registered/)
  })

  it('total supply equals the sum of balances after a sequence of transfers and transfer calls', async () => {
    const w = await setup()
    await w.call('dave.test', 'storage_deposit', {}, { deposit: NEAR / 10n })
    const accounts = ['alice.test', 'bob.test', 'carol.test', 'dave.test', 'echo.test', CONTRACT]
    const steps: Array<[string, string, string, string?]> = [
      ['alice.test', 'dave.test', '333'], ['dave.test', 'carol.test', '33'], ['bob.test', 'echo.test', '77', 'return:7'],
      ['carol.test', CONTRACT, '283'], ['dave.test', 'echo.test', '300', 'panic'], ['alice.test', 'echo.test', '1', 'keep'],
      ['dave.test', 'bob.test', '300']
    ]
    for (const [from, to, amount, msg] of steps) {
      if (msg == null) await w.call(from, 'ft_transfer', { receiver_id: to, amount }, ONE_YOCTO)
      else await w.call(from, 'ft_transfer_call', { receiver_id: to, amount, msg }, ONE_YOCTO)
    }
    const balances = await Promise.all(accounts.map(async a => await w.balance(a)))
    assert.deepEqual(balances, [666n, 730n, 0n, 0n, 71n, 383n])
    assert.equal(balances.reduce((s, b) => s + b, 0n), await w.supply())
    assert.equal(await w.supply(), 1850n)
  })
})
