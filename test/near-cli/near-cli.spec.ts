/**
 * Opt-in interop test (`npm run test:near-cli`; not in `npm test`, see install.ts for why): the real near-cli
 * 4.0.13 binary against the real `nearai chain serve` on 127.0.0.1, configured as near-cli's `custom` network
 * (NEAR_ENV=custom, NEAR_CUSTOM_RPC) with a dev key in a temporary ~/.near-credentials. Every command's output
 * is checked against what the chain says through its JSON-RPC.
 */
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { KeyPair } from 'near-api-js'
import { devPublicKey, devSecretKey } from '../../node/chain/index.ts'
import { startCli, runCliWith, type RunningCli, type CliResult } from '../helpers/cli.ts'
import { tempDir } from '../chain/helpers.ts'
import { ensureNearCli } from './install.ts'

describe('near-cli 4.0.13 against `nearai chain serve`', function () {
  let nearBin: string
  let serve: RunningCli
  let url: string
  let home: { dir: string, remove: () => void }
  let cliHome: { dir: string, remove: () => void }

  const near = async (...args: string[]): Promise<CliResult> => {
    const r = await runCliWith(process.execPath, args, {
      bin: nearBin,
      timeoutMs: 60_000,
      env: { HOME: cliHome.dir, NEAR_ENV: 'custom', NEAR_NETWORK: undefined, NEAR_CUSTOM_RPC: url, NO_UPDATE_NOTIFIER: '1', CI: '1' }
    })
    assert.equal(r.code, 0, `near ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
    return r
  }
  const rpc = async (method: string, params: unknown): Promise<any> => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
    const body: any = await res.json()
    if (body.error != null) throw new Error(JSON.stringify(body.error))
    return body.result
  }
  const balance = async (accountId: string): Promise<bigint> => BigInt((await rpc('query', { request_type: 'view_account', account_id: accountId, finality: 'final' })).amount)
  const txId = (out: string): string => {
    const m = /Transaction Id (\w+)/.exec(out)
    assert.ok(m != null, `no transaction id in: ${out}`)
    return m[1]
  }

  before(async function () {
    nearBin = ensureNearCli()
    home = tempDir()
    cliHome = tempDir()
    const creds = join(cliHome.dir, '.near-credentials', 'custom')
    mkdirSync(creds, { recursive: true })
    writeFileSync(join(creds, 'alice.test.json'), JSON.stringify({ account_id: 'alice.test', public_key: devPublicKey('alice.test'), private_key: devSecretKey('alice.test') }))
    serve = startCli(['--home', home.dir, 'chain', 'serve', '--port', '0'])
    url = (await serve.waitForLog('dev chain serving JSON-RPC')).url
  })
  after(async () => {
    serve?.child.kill('SIGTERM')
    await serve?.exited
    home?.remove()
    cliHome?.remove()
  })

  it('state shows the account as view_account has it', async () => {
    const { stdout } = await near('state', 'alice.test')
    assert.match(stdout, /Account alice\.test/)
    assert.match(stdout, new RegExp(`amount: '${await balance('alice.test')}'`))
    assert.match(stdout, /formattedAmount: '10,000'/)
  })

  it('call signs a storage deposit; view and tx-status show it; view-state shows what the contract stored', async () => {
    const call = await near('call', 'nearai.test', 'storage_deposit', '{}', '--accountId', 'alice.test', '--deposit', '0.1')
    const hash = txId(call.stdout)
    assert.match(call.stdout, /total: '100000000000000000000000'/)
    const committed = await rpc('tx', { tx_hash: hash, sender_account_id: 'alice.test' })
    assert.equal(committed.transaction.actions[0].FunctionCall.method_name, 'storage_deposit')

    const view = await near('view', 'nearai.test', 'storage_balance_of', '{"account_id":"alice.test"}')
    assert.match(view.stdout, /total: '100000000000000000000000'/)

    const status = await near('tx-status', hash, 'alice.test')
    assert.match(status.stdout, new RegExp(`hash: '${hash}'`))
    assert.match(status.stdout, /method_name: 'storage_deposit'/)
    assert.match(status.stdout, /final_execution_status: 'FINAL'/)

    const state = await near('view-state', 'nearai.test', '--finality', 'final', '--utf8')
    assert.match(state.stdout, /key: 's\/alice\.test'/)
    const raw = await rpc('query', { request_type: 'view_state', account_id: 'nearai.test', prefix_base64: '', finality: 'final' })
    for (const v of raw.values) assert.ok(state.stdout.includes(`key: '${Buffer.from(v.key, 'base64').toString()}'`), `view-state lists ${Buffer.from(v.key, 'base64').toString()}`)
  })

  it('send-near moves the amount it says', async () => {
    const before = await balance('bob.test')
    const sent = await near('send-near', 'alice.test', 'bob.test', '1.5')
    txId(sent.stdout)
    assert.equal(await balance('bob.test'), before + 15n * 10n ** 23n)
  })

  it('list-keys shows the account\'s keys, including one add-key added', async () => {
    const first = await near('list-keys', 'alice.test')
    assert.ok(first.stdout.includes(devPublicKey('alice.test')))
    assert.match(first.stdout, /permission: 'FullAccess'/)
    const extra = KeyPair.fromRandom('ed25519').getPublicKey().toString()
    await near('add-key', 'alice.test', extra)
    const second = await near('list-keys', 'alice.test')
    assert.ok(second.stdout.includes(extra), second.stdout)
    assert.ok(second.stdout.includes(devPublicKey('alice.test')))
  })

  it('validators lists the dev chain\'s block producer', async () => {
    const { stdout } = await near('validators', 'current')
    assert.match(stdout, /Validators \(total: 1/)
    assert.match(stdout, /dev-chain/)
  })
})
