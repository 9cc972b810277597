import assert from 'node:assert/strict'
import { JsonRpcProvider, KeyPair } from 'near-api-js'
import { DevChain, NearLedger, devSecretKey, startRpcServer, LedgerCallError, serveChain } from '../../node/chain/index.ts'
import { signFunctionCall, unb58 } from '../../node/chain/dev-chain/transaction.ts'
import { devGenesis, hex32, steppingClock, tempDir } from './helpers.ts'

const ledgerFor = (url: string, accountId: string): NearLedger => new NearLedger({ rpcUrl: url, accountId, secretKey: devSecretKey(accountId), contractId: 'nearai.test' })

describe('dev chain JSON-RPC through near-api-js 7', function () {
  let chain: DevChain
  let server: { url: string, close: () => Promise<void> }
  let tmp: { dir: string, remove: () => void }

  before(async () => {
    tmp = tempDir()
    chain = await DevChain.open({ dir: tmp.dir, genesis: await devGenesis(), now: steppingClock() })
    server = await startRpcServer({ chain, host: '127.0.0.1', port: 0 })
  })
  after(async () => { await server.close(); chain.close(); tmp.remove() })

  it('serves status, block and view_account as near-api-js expects', async () => {
    const provider = new JsonRpcProvider({ url: server.url })
    const status = await provider.viewNodeStatus()
    assert.equal(status.chain_id, 'nearai-dev')
    const block = await provider.viewBlock({ finality: 'final' })
    assert.equal(block.header.hash, chain.head.hash)
    const acc = await provider.viewAccount({ accountId: 'alice.test' })
    assert.equal(BigInt(acc.amount), 10_000n * 10n ** 24n)
  })

  it('runs the anchoring flow with signed transactions; nonces advance', async () => {
    const provider = new JsonRpcProvider({ url: server.url })
    const alice = ledgerFor(server.url, 'alice.test')
    const pk = KeyPair.fromString(devSecretKey('alice.test')).getPublicKey()
    const before = (await provider.viewAccessKey({ accountId: 'alice.test', publicKey: pk })).nonce
    await alice.storageDeposit()
    const job = await alice.createJob({ job: 'rpc-job', specCid: 'bafyspec', evalCid: 'bafyeval', validators: ['bob.test', 'carol.test'], threshold: 2 })
    assert.equal(job.owner, 'alice.test')
    assert.equal((await provider.viewAccessKey({ accountId: 'alice.test', publicKey: pk })).nonce, before + 2n)
    for (const v of ['bob.test', 'carol.test']) {
      const l = ledgerFor(server.url, v)
      await l.storageDeposit()
      await l.attest({ job: 'rpc-job', round: 1, checkpointCid: 'bafyckpt', weightsSha256: hex32('1'), contributionsRoot: hex32('2'), contributionsTotal: 64, evalLoss: 0.25 })
    }
    const latest = await alice.latestAnchor('rpc-job')
    assert.deepEqual([latest?.round, latest?.checkpoint_cid, latest?.attesters], [1, 'bafyckpt', ['bob.test', 'carol.test']])
    await assert.rejects(ledgerFor(server.url, 'eve.test').attest({ job: 'rpc-job', round: 1, checkpointCid: 'x', weightsSha256: hex32('1'), contributionsRoot: hex32('2'), contributionsTotal: 64, evalLoss: 1 }),
      (e: unknown) => e instanceof LedgerCallError && /storage_deposit|not a validator/.test(e.message))
  })

  it('rejects a replayed transaction and a stale nonce with InvalidNonce; tx finds the committed one', async () => {
    const provider = new JsonRpcProvider({ url: server.url })
    const pk = KeyPair.fromString(devSecretKey('dave.test')).getPublicKey()
    const nonce = (await provider.viewAccessKey({ accountId: 'dave.test', publicKey: pk })).nonce + 1n
    const signed = signFunctionCall({ signerId: 'dave.test', secretKey: devSecretKey('dave.test'), receiverId: 'nearai.test', nonce, blockHash: unb58(chain.head.hash), calls: [{ methodName: 'storage_deposit', args: Buffer.from('{}'), gas: 30n * 10n ** 12n, deposit: 10n ** 23n }] })
    const b64 = Buffer.from(signed).toString('base64')
    const first: any = await provider.sendJsonRpc('send_tx', { signed_tx_base64: b64, wait_until: 'FINAL' })
    assert.ok('SuccessValue' in first.status)
    await assert.rejects(provider.sendJsonRpc('send_tx', { signed_tx_base64: b64, wait_until: 'FINAL' }), (e: any) => e.constructor.name === 'InvalidNonceError')
    const stale = signFunctionCall({ signerId: 'dave.test', secretKey: devSecretKey('dave.test'), receiverId: 'nearai.test', nonce, blockHash: unb58(chain.head.hash), calls: [{ methodName: 'storage_balance_of', args: Buffer.from('{"account_id":"dave.test"}'), gas: 30n * 10n ** 12n, deposit: 0n }] })
    await assert.rejects(provider.sendJsonRpc('send_tx', { signed_tx_base64: Buffer.from(stale).toString('base64') }), (e: any) => e.constructor.name === 'InvalidNonceError')
    const status: any = await provider.viewTransactionStatus({ txHash: first.transaction.hash, accountId: 'dave.test' })
    assert.equal(status.transaction.nonce, Number(nonce))
  })

  it('rejects a transaction signed with another key and one with a forged signature', async () => {
    const provider = new JsonRpcProvider({ url: server.url })
    const signed = signFunctionCall({ signerId: 'dave.test', secretKey: devSecretKey('eve.test'), receiverId: 'nearai.test', nonce: 1000n, blockHash: unb58(chain.head.hash), calls: [{ methodName: 'get_job', args: Buffer.from('{"job":"x"}'), gas: 10n ** 13n, deposit: 0n }] })
    await assert.rejects(provider.sendJsonRpc('send_tx', { signed_tx_base64: Buffer.from(signed).toString('base64') }), /access key|AccessKeyNotFound|does not exist/i)
    const forged = Uint8Array.from(signFunctionCall({ signerId: 'dave.test', secretKey: devSecretKey('dave.test'), receiverId: 'nearai.test', nonce: 1000n, blockHash: unb58(chain.head.hash), calls: [{ methodName: 'get_job', args: Buffer.from('{"job":"x"}'), gas: 10n ** 13n, deposit: 0n }] }))
    forged[forged.length - 1] ^= 1
    await assert.rejects(provider.sendJsonRpc('send_tx', { signed_tx_base64: Buffer.from(forged).toString('base64') }), /signature/i)
  })

  it('reports a contract panic in a view as a contract execution error', async () => {
    const provider = new JsonRpcProvider({ url: server.url })
    await assert.rejects(provider.callFunction({ contractId: 'nearai.test', method: 'get_job', args: { job: 'BAD ID' } }), /job id/)
  })

  it('serveChain serves the dev chain under a home and persists it', async () => {
    const home = tempDir()
    try {
      const served = await serveChain({ home: home.dir, host: '127.0.0.1', port: 0 })
      const l = ledgerFor(served.url, 'carol.test')
      await l.storageDeposit()
      await served.close()
      const again = await serveChain({ home: home.dir, host: '127.0.0.1', port: 0 })
      assert.ok((await ledgerFor(again.url, 'carol.test').storageBalanceOf()) != null)
      assert.equal(again.chain.head.height, 1n)
      await again.close()
    } finally { home.remove() }
  })
})
