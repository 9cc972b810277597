/**
 * A NEAR-compatible JSON-RPC server over the dev chain, enough for near-api-js 7 and near-cli: `status`,
 * `block`, `gas_price`, `query` (view_account, view_access_key, call_function), `send_tx`,
 * `broadcast_tx_commit`, `broadcast_tx_async`, `tx`. Errors use NEAR's structured error shapes.
 * Binds where it is told (127.0.0.1 by default): it has no authentication.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { z } from 'zod'
import type { DevChain } from '../dev-chain/chain.ts'
import { InvalidTransactionError, UnknownAccessKeyError, UnknownAccountError, UnknownBlockError } from '../dev-chain/errors.ts'
import { ContractError } from '../../../contracts/harness/index.ts'
import { blockView, finalExecutionOutcome } from './outcome.ts'

const MAX_BODY = 8 * 1024 * 1024

const request = z.object({ jsonrpc: z.literal('2.0'), id: z.union([z.string(), z.number(), z.null()]), method: z.string(), params: z.unknown() })
const blockRef = z.object({ finality: z.enum(['optimistic', 'near-final', 'final']).optional(), block_id: z.union([z.string(), z.number()]).optional().nullable() })
const query = z.discriminatedUnion('request_type', [
  z.object({ request_type: z.literal('view_account'), account_id: z.string() }).passthrough(),
  z.object({ request_type: z.literal('view_access_key'), account_id: z.string(), public_key: z.string() }).passthrough(),
  z.object({ request_type: z.literal('call_function'), account_id: z.string(), method_name: z.string(), args_base64: z.string() }).passthrough()
])
const sendTx = z.object({ signed_tx_base64: z.string(), wait_until: z.string().optional() })
const txStatus = z.object({ tx_hash: z.string(), sender_account_id: z.string(), wait_until: z.string().optional() })

class RpcFailure extends Error {
  constructor (readonly body: Record<string, unknown>) { super(String(body.message ?? 'rpc error')) }
}

const handlerError = (name: string, info: Record<string, unknown>, extra: Record<string, unknown> = {}): RpcFailure =>
  new RpcFailure({ name: 'HANDLER_ERROR', cause: { name, info }, code: -32000, message: 'Server error', data: info.error_message ?? name, ...extra })
const parseError = (msg: string): RpcFailure =>
  new RpcFailure({ name: 'REQUEST_VALIDATION_ERROR', cause: { name: 'PARSE_ERROR', info: { error_message: msg } }, code: -32700, message: 'Parse error', data: msg })

function params<T> (schema: z.ZodType<T>, p: unknown): T {
  const r = schema.safeParse(p)
  if (!r.success) throw parseError(r.error.message)
  return r.data
}

export interface RpcServerOptions {
  chain: DevChain
  host?: string
  port?: number
}

export async function startRpcServer (opts: RpcServerOptions): Promise<{ url: string, close: () => Promise<void> }> {
  const { chain } = opts
  const at = (): { block_height: number, block_hash: string } => ({ block_height: Number(chain.head.height), block_hash: chain.head.hash })

  const submit = async (b64: string): Promise<Record<string, unknown>> => {
    try {
      const committed = await chain.submit(Buffer.from(b64, 'base64'))
      return finalExecutionOutcome(committed)
    } catch (err) {
      if (err instanceof InvalidTransactionError) {
        throw handlerError('INVALID_TRANSACTION', { error_message: err.message }, { data: { TxExecutionError: { InvalidTxError: err.invalidTxError } } })
      }
      throw err
    }
  }

  const methods: Record<string, (p: unknown) => Promise<unknown>> = {
    status: async () => ({
      chain_id: chain.chainId, protocol_version: 73, latest_protocol_version: 73, rpc_addr: null, validators: [], node_key: null,
      version: { version: 'nearai-dev-chain', build: 'nearai', rustc_version: '' },
      sync_info: { latest_block_hash: chain.head.hash, latest_block_height: Number(chain.head.height), latest_state_root: '11111111111111111111111111111111', latest_block_time: new Date(chain.head.timestampMs).toISOString(), syncing: false, earliest_block_hash: chain.blocks[0].hash, earliest_block_height: 0 }
    }),
    block: async (p) => {
      const ref = params(blockRef, Array.isArray(p) ? { block_id: p[0] } : p)
      try { return blockView(chain.block({ finality: ref.finality, blockId: ref.block_id ?? undefined }), chain.chainId) } catch (err) {
        if (err instanceof UnknownBlockError) throw handlerError('UNKNOWN_BLOCK', { block_reference: { block_id: ref.block_id } })
        throw err
      }
    },
    gas_price: async () => ({ gas_price: '100000000' }),
    query: async (p) => {
      const q = params(query, p)
      try {
        if (q.request_type === 'view_account') {
          const a = chain.viewAccount(q.account_id)
          return { amount: a.amount.toString(), locked: a.locked.toString(), code_hash: a.codeHash, storage_usage: Number(a.storageUsage), storage_paid_at: 0, ...at() }
        }
        if (q.request_type === 'view_access_key') {
          const k = chain.viewAccessKey(q.account_id, q.public_key)
          return { nonce: Number(k.nonce), permission: 'FullAccess', ...at() }
        }
        const { result, logs } = await chain.view(q.account_id, q.method_name, Buffer.from(q.args_base64, 'base64'))
        return { result: Array.from(result), logs, ...at() }
      } catch (err) {
        if (err instanceof UnknownAccountError) throw handlerError('UNKNOWN_ACCOUNT', { requested_account_id: err.accountId, ...at() })
        if (err instanceof UnknownAccessKeyError) throw handlerError('UNKNOWN_ACCESS_KEY', { public_key: err.publicKey, ...at() })
        if (err instanceof ContractError) {
          const vmError = err.kind === 'GuestPanic' ? { HostError: { GuestPanic: { panic_msg: err.message } } } : err.kind === 'MethodNotFound' ? { MethodResolveError: 'MethodNotFound' } : { HostError: { [err.kind]: { message: err.message } } }
          throw handlerError('CONTRACT_EXECUTION_ERROR', { vm_error: vmError, error_message: `wasm execution failed with error: ${err.message}`, ...at() })
        }
        throw err
      }
    },
    send_tx: async (p) => await submit(params(sendTx, p).signed_tx_base64),
    broadcast_tx_commit: async (p) => await submit(params(z.tuple([z.string()]), p)[0]),
    broadcast_tx_async: async (p) => {
      const r = await submit(params(z.tuple([z.string()]), p)[0])
      return (r.transaction as { hash: string }).hash
    },
    tx: async (p) => {
      const raw = Array.isArray(p) ? { tx_hash: p[0], sender_account_id: p[1] } : p
      const q = params(txStatus, raw)
      const c = chain.transaction(q.tx_hash)
      if (c == null || c.tx.signerId !== q.sender_account_id) throw handlerError('UNKNOWN_TRANSACTION', { requested_transaction_hash: q.tx_hash })
      return finalExecutionOutcome(c)
    }
  }

  const reply = (res: ServerResponse, body: unknown): void => {
    const text = JSON.stringify(body)
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') { res.writeHead(405).end(); return }
    const chunks: Buffer[] = []
    let size = 0
    for await (const c of req) {
      size += (c as Buffer).length
      if (size > MAX_BODY) { res.writeHead(413).end(); return }
      chunks.push(c as Buffer)
    }
    let id: unknown = null
    try {
      let json: unknown
      try { json = JSON.parse(Buffer.concat(chunks).toString('utf8')) } catch { throw parseError('body is not JSON') }
      const r = request.safeParse(json)
      if (!r.success) throw parseError(r.error.message)
      id = r.data.id
      const m = methods[r.data.method]
      if (m == null) throw new RpcFailure({ name: 'REQUEST_VALIDATION_ERROR', cause: { name: 'METHOD_NOT_FOUND', info: { method_name: r.data.method } }, code: -32601, message: 'Method not found', data: r.data.method })
      reply(res, { jsonrpc: '2.0', id, result: await m(r.data.params) })
    } catch (err) {
      if (err instanceof RpcFailure) { reply(res, { jsonrpc: '2.0', id, error: err.body }); return }
      const msg = (err as Error).message
      reply(res, { jsonrpc: '2.0', id, error: { name: 'INTERNAL_ERROR', cause: { name: 'INTERNAL_ERROR', info: { error_message: msg } }, code: -32000, message: 'Server error', data: msg } })
    }
  }

  const server = createServer((req, res) => { handle(req, res).catch(() => { res.destroy() }) })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const addr = server.address() as AddressInfo
  return {
    url: `http://${addr.address}:${addr.port}`,
    close: async () => { server.closeAllConnections(); await new Promise<void>(resolve => server.close(() => resolve())) }
  }
}
