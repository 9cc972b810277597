/**
 * The JSON-RPC methods near-cli and wallets call beyond the ledger flow, through near-api-js 7 and raw
 * requests: access keys (list, add, delete, function-call keys), view_state against what the contract
 * stored, view_code against the deployed wasm, health, validators, the genesis and protocol configs, gas
 * price, chunks, EXPERIMENTAL_tx_status, and NEAR's error shapes for unknown methods and request types.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { sha256 } from '@noble/hashes/sha2.js'
import { base58btc } from 'multiformats/bases/base58'
import { Account, JsonRpcProvider, KeyPair, KeyPairSigner, actions, type KeyPairString } from 'near-api-js'
import { ensureContractBuilt } from '../../contracts/build.ts'
import { DevChain, NearLedger, devPublicKey, devSecretKey, startRpcServer } from '../../node/chain/index.ts'
import { devGenesis, steppingClock, tempDir } from './helpers.ts'

describe('dev chain JSON-RPC: the methods near-cli and wallets call', function () {
  let chain: DevChain
  let server: { url: string, close: () => Promise<void> }
  let tmp: { dir: string, remove: () => void }
  let provider: JsonRpcProvider

  const rpc = async (method: string, params: unknown): Promise<any> => {
    const res = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 't', method, params }) })
    assert.equal(res.status, 200)
    const body: any = await res.json()
    assert.equal(body.jsonrpc, '2.0')
    assert.equal(body.id, 't')
    return body
  }
  const account = (id: string, key: string = devSecretKey(id)): Account => new Account(id, provider, new KeyPairSigner(KeyPair.fromString(key as KeyPairString)))

  before(async () => {
    tmp = tempDir()
    chain = await DevChain.open({ dir: tmp.dir, genesis: await devGenesis(), now: steppingClock() })
    server = await startRpcServer({ chain, host: '127.0.0.1', port: 0 })
    provider = new JsonRpcProvider({ url: server.url })
  })
  after(async () => { await server.close(); chain.close(); tmp.remove() })

  it('lists, adds and deletes access keys; a new key signs, a deleted one no longer does', async () => {
    const alice = account('alice.test')
    const initial = await alice.getAccessKeyList()
    assert.deepEqual(initial.keys.map((k: any) => [k.public_key, k.access_key.permission]), [[devPublicKey('alice.test'), 'FullAccess']])

    const extra = KeyPair.fromRandom('ed25519')
    const added: any = await alice.addFullAccessKey(extra.getPublicKey())
    assert.ok('SuccessValue' in added.status, JSON.stringify(added.status))
    const list = await provider.viewAccessKeyList({ accountId: 'alice.test' })
    const byKey = new Map(list.keys.map((k: any) => [k.public_key, k.access_key]))
    assert.equal(list.keys.length, 2)
    assert.equal(byKey.get(extra.getPublicKey().toString())?.permission, 'FullAccess')
    // NEAR's nonce for a key added in block h: (h - 1) * 1e6.
    const addedAt = chain.block({ blockId: added.transaction_outcome.block_hash }).height
    assert.equal(BigInt(byKey.get(extra.getPublicKey().toString())!.nonce), (addedAt - 1n) * 1_000_000n)

    // The new key signs a transfer; the balance moves.
    const before = (await provider.viewAccount({ accountId: 'bob.test' })).amount
    await account('alice.test', extra.toString()).transfer({ receiverId: 'bob.test', amount: 5n })
    assert.equal((await provider.viewAccount({ accountId: 'bob.test' })).amount, before + 5n)

    // Adding the same key again fails as NEAR's AddKeyAlreadyExists; nothing changes.
    await assert.rejects(alice.addFullAccessKey(extra.getPublicKey()), /AddKeyAlreadyExists|already exists/i)
    assert.equal((await provider.viewAccessKeyList({ accountId: 'alice.test' })).keys.length, 2)

    await alice.deleteKey(extra.getPublicKey())
    assert.deepEqual((await provider.viewAccessKeyList({ accountId: 'alice.test' })).keys.map((k: any) => k.public_key), [devPublicKey('alice.test')])
    await assert.rejects(account('alice.test', extra.toString()).transfer({ receiverId: 'bob.test', amount: 5n }), /access key|AccessKeyNotFound|does not exist/i)
  })

  it('creates an account with a key in one transaction (CreateAccount, Transfer, AddKey); the new account signs', async () => {
    const key = KeyPair.fromRandom('ed25519')
    await account('bob.test').createAccount({ newAccountId: 'sub.bob.test', publicKey: key.getPublicKey(), nearToTransfer: 10n ** 24n })
    const keys = await provider.viewAccessKeyList({ accountId: 'sub.bob.test' })
    assert.deepEqual(keys.keys.map((k: any) => [k.public_key, k.access_key.permission]), [[key.getPublicKey().toString(), 'FullAccess']])
    assert.equal((await provider.viewAccount({ accountId: 'sub.bob.test' })).amount, 10n ** 24n)
    await account('sub.bob.test', key.toString()).transfer({ receiverId: 'bob.test', amount: 10n ** 20n })
    assert.equal((await provider.viewAccount({ accountId: 'sub.bob.test' })).amount, 10n ** 24n - 10n ** 20n)
    // Adding a key to someone else's account is NEAR's ActorNoPermission; nothing is added.
    const stranger = KeyPair.fromRandom('ed25519')
    await assert.rejects(account('eve.test').signAndSendTransaction({ receiverId: 'sub.bob.test', actions: [actions.addFullAccessKey(stranger.getPublicKey())] }), /ActorNoPermission|permission/i)
    assert.equal((await provider.viewAccessKeyList({ accountId: 'sub.bob.test' })).keys.length, 1)
  })

  it('a function-call key calls only its contract and methods, without a deposit', async () => {
    const carol = account('carol.test')
    const fk = KeyPair.fromRandom('ed25519')
    await carol.addFunctionCallAccessKey({ publicKey: fk.getPublicKey(), contractId: 'nearai.test', methodNames: ['get_job'], allowance: 10n ** 24n })
    const view: any = await provider.viewAccessKey({ accountId: 'carol.test', publicKey: fk.getPublicKey() })
    assert.deepEqual(view.permission, { FunctionCall: { allowance: (10n ** 24n).toString(), receiver_id: 'nearai.test', method_names: ['get_job'] } })
    const limited = account('carol.test', fk.toString())
    await limited.callFunction({ contractId: 'nearai.test', methodName: 'get_job', args: { job: 'none' }, gas: 30n * 10n ** 12n })
    await assert.rejects(limited.callFunction({ contractId: 'nearai.test', methodName: 'storage_deposit', args: {}, gas: 30n * 10n ** 12n }), /MethodNameMismatch|does not allow/i)
    await assert.rejects(limited.transfer({ receiverId: 'bob.test', amount: 1n }), /RequiresFullAccess|exactly one function call/i)
  })

  it('view_state returns what the contract stored, by prefix, in base64', async () => {
    const alice = new NearLedger({ rpcUrl: server.url, accountId: 'alice.test', secretKey: devSecretKey('alice.test'), contractId: 'nearai.test' })
    await alice.storageDeposit()
    await alice.createJob({ job: 'state-job', specCid: 'bafyspec', evalCid: 'bafyeval', validators: ['bob.test'], threshold: 1 })
    const jobs = await provider.viewContractState({ contractId: 'nearai.test', prefix: 'j/state-job' })
    assert.equal(jobs.values.length, 1)
    assert.equal(Buffer.from(jobs.values[0].key, 'base64').toString(), 'j/state-job')
    const job = JSON.parse(Buffer.from(jobs.values[0].value, 'base64').toString())
    assert.deepEqual([job.owner, job.spec_cid, job.eval_cid, job.validators], ['alice.test', 'bafyspec', 'bafyeval', ['bob.test']])
    // The storage-balance record: 16 bytes of u128 total, then u64 used, as the contract's own view reports it.
    const bal = await provider.viewContractState({ contractId: 'nearai.test', prefix: 's/alice.test' })
    assert.equal(bal.values.length, 1)
    const raw = Buffer.from(bal.values[0].value, 'base64')
    const viewed: any = await provider.callFunction({ contractId: 'nearai.test', method: 'storage_balance_of', args: { account_id: 'alice.test' } })
    assert.equal(raw.readBigUInt64LE(0) + (raw.readBigUInt64LE(8) << 64n), BigInt(viewed.total))
    // No prefix: every key, sorted; a prefix that matches nothing: none.
    const all = await provider.viewContractState({ contractId: 'nearai.test' })
    const keys = all.values.map((v: any) => Buffer.from(v.key, 'base64'))
    assert.ok(keys.length > 2)
    assert.deepEqual(keys, [...keys].sort(Buffer.compare))
    assert.equal((await provider.viewContractState({ contractId: 'nearai.test', prefix: 'zz-nothing' })).values.length, 0)
  })

  it('view_code returns the deployed wasm and its hash: base58 of its sha256, the account code_hash', async () => {
    const wasm = readFileSync(await ensureContractBuilt())
    const code = await provider.viewContractCode({ contractId: 'nearai.test' })
    assert.equal(code.hash, base58btc.baseEncode(sha256(wasm)))
    assert.ok(Buffer.from(code.code).equals(wasm))
    assert.equal((await provider.viewAccount({ accountId: 'nearai.test' })).code_hash, code.hash)
    const none = await rpc('query', { request_type: 'view_code', account_id: 'bob.test', finality: 'final' })
    assert.equal(none.error.name, 'HANDLER_ERROR')
    assert.equal(none.error.cause.name, 'NO_CONTRACT_CODE')
    assert.equal(none.error.cause.info.contract_account_id, 'bob.test')
  })

  it('answers health, status, validators, genesis and protocol config, gas price in NEAR shapes', async () => {
    assert.equal((await rpc('health', [])).result, null)
    const status = await provider.viewNodeStatus()
    assert.equal(status.sync_info.latest_block_hash, chain.head.hash)
    assert.equal((status as any).genesis_hash, chain.blocks[0].hash)
    const block = await provider.viewBlock({ finality: 'final' })
    const validators: any = await provider.viewValidators()
    // The one block producer (the blocks' author), staking nothing, made every block.
    assert.equal(validators.current_validators.length, 1)
    const producer = validators.current_validators[0]
    assert.equal(producer.account_id, block.author)
    assert.deepEqual([producer.stake, producer.num_produced_blocks, producer.num_expected_blocks], ['0', Number(chain.head.height), Number(chain.head.height)])
    assert.deepEqual(validators.next_validators.map((v: any) => v.account_id), [block.author])
    for (const k of ['current_proposals', 'prev_epoch_kickout', 'current_fishermen']) assert.deepEqual(validators[k], [], k)
    assert.equal(typeof validators.epoch_start_height, 'number')
    const genesis = (await rpc('EXPERIMENTAL_genesis_config', null)).result
    assert.equal(genesis.chain_id, 'nearai-dev')
    assert.equal(genesis.genesis_time, new Date(chain.genesis.genesisTimeMs).toISOString())
    assert.equal(BigInt(genesis.total_supply), chain.genesis.accounts.reduce((s, a) => s + BigInt(a.balance), 0n))
    assert.equal(genesis.transaction_validity_period, 86_400)
    assert.deepEqual(genesis.validators.map((v: any) => v.account_id), [block.author])
    const protocol: any = await provider.experimental_protocolConfig({ finality: 'final' })
    assert.equal(protocol.chain_id, 'nearai-dev')
    assert.equal(protocol.runtime_config.storage_amount_per_byte, (10n ** 19n).toString())
    assert.equal((await provider.viewGasPrice()).gas_price, '100000000')
    assert.equal((await rpc('gas_price', { block_id: 999_999 })).error.cause.name, 'UNKNOWN_BLOCK')
  })

  it('serves a block\'s chunk with its transactions, and EXPERIMENTAL_tx_status with the receipt', async () => {
    const sent: any = await account('dave.test').transfer({ receiverId: 'eve.test', amount: 7n })
    const block = await provider.viewBlock({ blockId: sent.transaction_outcome.block_hash })
    assert.equal(block.chunks.length, 1)
    const chunk: any = await provider.viewChunk(block.chunks[0].chunk_hash)
    assert.deepEqual(chunk.transactions.map((t: any) => t.hash), [sent.transaction.hash])
    assert.deepEqual(chunk.transactions[0].actions, [{ Transfer: { deposit: '7' } }])
    const byShard = (await rpc('chunk', { block_id: block.header.height, shard_id: 0 })).result
    assert.equal(byShard.header.chunk_hash, block.chunks[0].chunk_hash)
    const withReceipts: any = await provider.viewTransactionStatusWithReceipts({ txHash: sent.transaction.hash, accountId: 'dave.test' })
    assert.equal(withReceipts.receipts[0].receipt_id, withReceipts.transaction_outcome.outcome.receipt_ids[0])
    assert.equal(withReceipts.receipts[0].receipt.Action.actions[0].Transfer.deposit, '7')
    assert.equal((await rpc('chunk', ['11111111111111111111111111111111'])).error.cause.name, 'UNKNOWN_CHUNK')
  })

  it('answers unknown methods, unknown request types and malformed params with NEAR\'s error shapes', async () => {
    assert.deepEqual((await rpc('no_such_method', [])).error, {
      name: 'REQUEST_VALIDATION_ERROR', cause: { name: 'METHOD_NOT_FOUND', info: { method_name: 'no_such_method' } }, code: -32601, message: 'Method not found', data: 'no_such_method'
    })
    assert.equal((await rpc('toString', [])).error.cause.name, 'METHOD_NOT_FOUND')
    const unknownType = (await rpc('query', { request_type: 'view_everything', account_id: 'alice.test', finality: 'final' })).error
    assert.equal(unknownType.name, 'REQUEST_VALIDATION_ERROR')
    assert.equal(unknownType.cause.name, 'PARSE_ERROR')
    assert.equal(unknownType.code, -32700)
    assert.match(unknownType.cause.info.error_message, /unknown variant `view_everything`, expected one of .*`view_access_key_list`/)
    assert.equal(unknownType.data, unknownType.cause.info.error_message)
    const missing = (await rpc('query', { request_type: 'view_state', account_id: 'nearai.test', finality: 'final' })).error
    assert.deepEqual([missing.name, missing.cause.name], ['REQUEST_VALIDATION_ERROR', 'PARSE_ERROR'])
    assert.match(missing.cause.info.error_message, /prefix_base64/)
    const notJson = await (await fetch(server.url, { method: 'POST', body: '{"jsonrpc":' })).json() as any
    assert.deepEqual([notJson.error.name, notJson.error.cause.name], ['REQUEST_VALIDATION_ERROR', 'PARSE_ERROR'])
    const unknownAccount = (await rpc('query', { request_type: 'view_access_key_list', account_id: 'nobody.test', finality: 'final' })).error
    assert.deepEqual([unknownAccount.name, unknownAccount.cause.name, unknownAccount.cause.info.requested_account_id], ['HANDLER_ERROR', 'UNKNOWN_ACCOUNT', 'nobody.test'])
    // The dev chain keeps only its head's state: an older block is garbage-collected, an unknown one unknown.
    const old = (await rpc('query', { request_type: 'view_account', account_id: 'alice.test', block_id: 0 })).error
    assert.equal(old.cause.name, 'GARBAGE_COLLECTED_BLOCK')
    assert.equal((await rpc('query', { request_type: 'view_account', account_id: 'alice.test', block_id: 10_000_000 })).error.cause.name, 'UNKNOWN_BLOCK')
    assert.equal((await rpc('query', { request_type: 'view_account', account_id: 'alice.test', block_id: Number(chain.head.height) })).result.amount !== undefined, true)
  })

  it('replays added and deleted keys from the journal', async () => {
    const before = chain.viewAccessKeyList('carol.test')
    assert.equal(before.length, 2)
    await server.close()
    chain.close()
    chain = await DevChain.open({ dir: tmp.dir, genesis: await devGenesis(), now: steppingClock() })
    server = await startRpcServer({ chain, host: '127.0.0.1', port: 0 })
    provider = new JsonRpcProvider({ url: server.url })
    assert.deepEqual(chain.viewAccessKeyList('carol.test'), before)
    assert.equal(chain.viewAccessKeyList('alice.test').length, 1)
  })
})
