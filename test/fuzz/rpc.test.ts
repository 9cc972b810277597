/**
 * Fuzzing the dev chain's JSON-RPC endpoint (`node/chain/rpc/server.ts` over `node/chain/dev-chain/`) over
 * real HTTP: every request, hostile or not, is answered with a JSON-RPC result or one of NEAR's structured
 * errors (request validation, handler errors such as INVALID_TRANSACTION), never an INTERNAL_ERROR (an
 * exception nobody expected) or a dropped connection; a body past the bound is refused with 413; and no
 * hostile transaction changes the chain.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { DevChain, devSecretKey, startRpcServer } from '../../node/chain/index.ts'
import { signFunctionCall, unb58 } from '../../node/chain/dev-chain/transaction.ts'
import { devGenesis, steppingClock, tempDir } from '../chain/helpers.ts'
import { fuzzTimeout, hostileBytes, hostileJson, runs } from './fuzz.ts'

const EXPECTED_ERRORS = ['REQUEST_VALIDATION_ERROR', 'HANDLER_ERROR']

describe('fuzz: dev chain JSON-RPC', function () {
  this.timeout(fuzzTimeout(120_000))
  let chain: DevChain
  let server: { url: string, close: () => Promise<void> }
  let tmp: { dir: string, remove: () => void }

  before(async () => {
    tmp = tempDir()
    chain = await DevChain.open({ dir: tmp.dir, genesis: await devGenesis(), now: steppingClock() })
    server = await startRpcServer({ chain, host: '127.0.0.1', port: 0 })
  })
  after(async () => { await server.close(); chain.close(); tmp.remove() })

  async function post (body: Uint8Array | string): Promise<{ status: number, json?: any }> {
    const res = await fetch(server.url, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
    const text = await res.text()
    return { status: res.status, json: res.status === 200 ? JSON.parse(text) : undefined }
  }

  function checkAnswer (answer: { status: number, json?: any }, input: unknown): void {
    assert.equal(answer.status, 200, `status for ${JSON.stringify(input)?.slice(0, 200)}`)
    const { json } = answer
    assert.equal(json.jsonrpc, '2.0')
    if ('error' in json) {
      assert.ok(EXPECTED_ERRORS.includes(json.error.name), `expected a structured error, got ${JSON.stringify(json.error).slice(0, 400)} for ${JSON.stringify(input)?.slice(0, 300)}`)
      assert.equal(typeof json.error.cause?.name, 'string')
    } else {
      assert.ok('result' in json)
    }
  }

  function signedStorageDeposit (nonce: bigint): string {
    return Buffer.from(signFunctionCall({ signerId: 'dave.test', secretKey: devSecretKey('dave.test'), receiverId: 'nearai.test', nonce, blockHash: unb58(chain.head.hash), calls: [{ methodName: 'storage_deposit', args: Buffer.from('{}'), gas: 30n * 10n ** 12n, deposit: 10n ** 23n }] })).toString('base64')
  }

  it('hostile requests to every method get a result or a structured error, never an internal one', async () => {
    const tx = signedStorageDeposit(10n ** 9n)
    const requests: Array<Record<string, unknown>> = [
      { jsonrpc: '2.0', id: 1, method: 'status', params: [] },
      { jsonrpc: '2.0', id: 'b', method: 'block', params: { finality: 'final' } },
      { jsonrpc: '2.0', id: 2, method: 'block', params: [1] },
      { jsonrpc: '2.0', id: 3, method: 'query', params: { request_type: 'view_account', account_id: 'alice.test', finality: 'final' } },
      { jsonrpc: '2.0', id: 4, method: 'query', params: { request_type: 'view_access_key', account_id: 'alice.test', public_key: 'ed25519:11111111111111111111111111111111', finality: 'final' } },
      { jsonrpc: '2.0', id: 5, method: 'query', params: { request_type: 'call_function', account_id: 'nearai.test', method_name: 'latest_anchor', args_base64: Buffer.from('{"job":"x"}').toString('base64'), finality: 'final' } },
      { jsonrpc: '2.0', id: 6, method: 'tx', params: { tx_hash: '11111111111111111111111111111111', sender_account_id: 'alice.test' } },
      { jsonrpc: '2.0', id: 7, method: 'send_tx', params: { signed_tx_base64: tx, wait_until: 'FINAL' } },
      { jsonrpc: '2.0', id: 8, method: 'broadcast_tx_commit', params: [tx] },
      { jsonrpc: '2.0', id: 10, method: 'query', params: { request_type: 'view_access_key_list', account_id: 'alice.test', finality: 'final' } },
      { jsonrpc: '2.0', id: 11, method: 'query', params: { request_type: 'view_state', account_id: 'nearai.test', prefix_base64: Buffer.from('s/').toString('base64'), finality: 'final' } },
      { jsonrpc: '2.0', id: 12, method: 'query', params: { request_type: 'view_code', account_id: 'nearai.test', block_id: 0 } },
      { jsonrpc: '2.0', id: 13, method: 'health', params: [] },
      { jsonrpc: '2.0', id: 14, method: 'validators', params: [null] },
      { jsonrpc: '2.0', id: 15, method: 'EXPERIMENTAL_genesis_config', params: null },
      { jsonrpc: '2.0', id: 16, method: 'EXPERIMENTAL_protocol_config', params: { finality: 'final' } },
      { jsonrpc: '2.0', id: 17, method: 'gas_price', params: [null] },
      { jsonrpc: '2.0', id: 18, method: 'chunk', params: { block_id: 0, shard_id: 0 } },
      { jsonrpc: '2.0', id: 19, method: 'EXPERIMENTAL_tx_status', params: { tx_hash: '11111111111111111111111111111111', sender_account_id: 'alice.test' } }
    ]
    const height = chain.head.height
    const hostile = fc.oneof(
      ...requests.map(r => hostileJson(r)),
      ...requests.filter(r => r.method === 'query').map(r => hostileJson(r.params as Record<string, unknown>).map(p => JSON.stringify({ ...r, params: safeJson(p) })))
    )
    await fc.assert(fc.asyncProperty(hostile, async (body) => {
      const answer = await post(body)
      checkAnswer(answer, typeof body === 'string' ? body : new TextDecoder().decode(body))
    }), runs())
    // Transactions mutated anywhere in their bytes: refused by the chain (or, when the mutation kept them valid,
    // committed as what they now say); never an exception.
    const txBytes = Buffer.from(tx, 'base64')
    await fc.assert(fc.asyncProperty(hostileBytes(txBytes), async (bytes) => {
      const answer = await post(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'send_tx', params: { signed_tx_base64: Buffer.from(bytes).toString('base64') } }))
      checkAnswer(answer, Buffer.from(bytes).toString('hex'))
      if ('error' in answer.json && answer.json.error.name === 'HANDLER_ERROR') assert.equal(answer.json.error.cause.name, 'INVALID_TRANSACTION')
    }), runs())
    // Every hostile transaction above was signed for dave.test at one nonce: at most that one was committed.
    assert.ok(chain.head.height - height <= 1n, `the chain grew by ${chain.head.height - height} blocks`)
  })

  it('a body past the bound is refused with 413 before it is parsed, and the server keeps serving', async () => {
    const answer = await post('x'.repeat(8 * 1024 * 1024 + 1))
    assert.equal(answer.status, 413)
    checkAnswer(await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'status', params: [] })), 'status')
  })

  it('a replayed transaction is committed once: the replay is refused as INVALID_TRANSACTION', async () => {
    const nonce = BigInt((await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'query', params: { request_type: 'view_access_key', account_id: 'dave.test', public_key: 'ed25519:' + '1'.repeat(32), finality: 'final' } }))).json?.result?.nonce ?? 0) + 10n ** 10n
    const tx = signedStorageDeposit(nonce)
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'send_tx', params: { signed_tx_base64: tx, wait_until: 'FINAL' } })
    const first = await post(body)
    checkAnswer(first, 'first')
    assert.ok('result' in first.json, JSON.stringify(first.json).slice(0, 300))
    const height = chain.head.height
    const replay = await post(body)
    checkAnswer(replay, 'replay')
    assert.equal(replay.json.error?.cause?.name, 'INVALID_TRANSACTION')
    assert.equal(chain.head.height, height, 'the replay added no block')
  })
})

function safeJson (bytes: Uint8Array): unknown {
  try { return JSON.parse(new TextDecoder().decode(bytes)) } catch { return new TextDecoder().decode(bytes) }
}
