/**
 * A NEAR-compatible JSON-RPC server over the dev chain, enough for near-api-js 7, near-cli 4 and wallets:
 * `status`, `health`, `block`, `chunk`, `gas_price`, `validators`, `EXPERIMENTAL_genesis_config`,
 * `EXPERIMENTAL_protocol_config`, `query` (see query.ts), `send_tx`, `broadcast_tx_commit`,
 * `broadcast_tx_async`, `tx`, `EXPERIMENTAL_tx_status`. Every request is validated; errors use NEAR's
 * structured shapes (errors.ts). Binds where it is told (127.0.0.1 by default): it has no authentication.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { z } from 'zod'
import type { Block, CommittedTransaction, DevChain } from '../dev-chain/chain.ts'
import { InvalidTransactionError, UnknownBlockError } from '../dev-chain/errors.ts'
import { blockView, chunkHash, chunkView, finalExecutionOutcome, receiptViews } from './outcome.ts'
import { handlerError, internalError, methodNotFound, params, parseError, RpcFailure } from './errors.ts'
import { query } from './query.ts'
import { EPOCH_ID, GAS_PRICE, genesisConfigView, protocolConfigView, statusView, validatorsView } from './config-views.ts'

const MAX_BODY = 8 * 1024 * 1024

const request = z.object({ jsonrpc: z.literal('2.0'), id: z.union([z.string().max(256), z.number(), z.null()]), method: z.string().max(256), params: z.unknown() })
const blockId = z.union([z.string().min(1).max(64), z.number().int().nonnegative()])
const blockRef = z.object({ finality: z.enum(['optimistic', 'near-final', 'final']).optional(), block_id: blockId.optional().nullable() })
const signedTx = z.string().min(1).max(MAX_BODY).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64')
const waitUntil = z.enum(['NONE', 'INCLUDED', 'EXECUTED_OPTIMISTIC', 'INCLUDED_FINAL', 'EXECUTED', 'FINAL']).optional()
const sendTx = z.object({ signed_tx_base64: signedTx, wait_until: waitUntil })
const txStatus = z.object({ tx_hash: z.string().min(1).max(64), sender_account_id: z.string().min(2).max(64), wait_until: waitUntil })
const chunkRef = z.union([z.object({ chunk_id: z.string().min(1).max(64) }), z.object({ block_id: blockId, shard_id: z.number().int().nonnegative() })])
const gasPriceRef = z.union([z.tuple([blockId.nullable()]), z.tuple([]), z.object({ block_id: blockId.nullable().optional() }), z.null(), z.undefined()])
const noParams = z.union([z.tuple([]), z.object({}), z.null(), z.undefined()])
const validatorsRef = z.union([z.tuple([blockId.nullable()]), z.tuple([]), z.object({ block_id: blockId }), z.object({ epoch_id: z.string().min(1).max(64) }), z.object({ latest: z.null() }), z.null(), z.undefined()])
const configRef = z.union([blockRef, z.null(), z.undefined()])

export interface RpcServerOptions {
  chain: DevChain
  host?: string
  port?: number
}

export async function startRpcServer (opts: RpcServerOptions): Promise<{ url: string, close: () => Promise<void> }> {
  const { chain } = opts
  const startedAtMs = Date.now()

  const findBlock = (ref: { finality?: string, block_id?: string | number | null }): Block => {
    try { return chain.block({ finality: ref.finality, blockId: ref.block_id ?? undefined }) } catch (err) {
      if (err instanceof UnknownBlockError) throw handlerError('UNKNOWN_BLOCK', { block_reference: ref.block_id != null ? { block_id: ref.block_id } : { finality: ref.finality } })
      throw err
    }
  }

  // Chunk hash -> block, filled as blocks are asked about (blocks are only ever appended).
  const chunks = new Map<string, Block>()
  const chunkBlock = (hash: string): Block | undefined => {
    for (let h = chunks.size; h < chain.blocks.length; h++) chunks.set(chunkHash(chain.blocks[h]), chain.blocks[h])
    return chunks.get(hash)
  }

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

  const committedTx = (p: unknown): CommittedTransaction => {
    const raw = Array.isArray(p) ? { tx_hash: p[0], sender_account_id: p[1] } : p
    const q = params(txStatus, raw)
    const c = chain.transaction(q.tx_hash)
    if (c == null || c.tx.signerId !== q.sender_account_id) throw handlerError('UNKNOWN_TRANSACTION', { requested_transaction_hash: q.tx_hash })
    return c
  }

  const methods: Record<string, (p: unknown) => Promise<unknown>> = {
    status: async (p) => { params(noParams, p); return statusView(chain, startedAtMs, Date.now) },
    health: async (p) => { params(noParams, p); return null },
    block: async (p) => blockView(findBlock(params(blockRef, Array.isArray(p) ? { block_id: p[0] } : p)), chain.chainId),
    chunk: async (p) => {
      const ref = params(chunkRef, Array.isArray(p) ? { chunk_id: p[0] } : p)
      if ('chunk_id' in ref) {
        const b = chunkBlock(ref.chunk_id)
        if (b == null) throw handlerError('UNKNOWN_CHUNK', { chunk_hash: ref.chunk_id })
        return chunkView(b, chain)
      }
      if (ref.shard_id !== 0) throw handlerError('INVALID_SHARD_ID', { shard_id: ref.shard_id })
      return chunkView(findBlock({ block_id: ref.block_id }), chain)
    },
    gas_price: async (p) => {
      const ref = params(gasPriceRef, p)
      const id = Array.isArray(ref) ? ref[0] : ref?.block_id
      if (id != null) findBlock({ block_id: id })
      return { gas_price: GAS_PRICE }
    },
    validators: async (p) => {
      const ref = params(validatorsRef, p)
      const id = Array.isArray(ref) ? ref[0] : ref != null && 'block_id' in ref ? ref.block_id : undefined
      if (id != null) findBlock({ block_id: id })
      if (ref != null && !Array.isArray(ref) && 'epoch_id' in ref && ref.epoch_id !== EPOCH_ID) throw handlerError('UNKNOWN_EPOCH', { error_message: `epoch ${ref.epoch_id} is unknown` })
      return validatorsView(chain)
    },
    EXPERIMENTAL_genesis_config: async (p) => { params(noParams, p); return genesisConfigView(chain) },
    EXPERIMENTAL_protocol_config: async (p) => {
      const ref = params(configRef, p)
      if (ref?.block_id != null) findBlock(ref)
      return protocolConfigView(chain)
    },
    query: async (p) => await query(chain, p),
    send_tx: async (p) => await submit(params(sendTx, p).signed_tx_base64),
    broadcast_tx_commit: async (p) => await submit(params(z.tuple([signedTx]), p)[0]),
    broadcast_tx_async: async (p) => {
      const r = await submit(params(z.tuple([signedTx]), p)[0])
      return (r.transaction as { hash: string }).hash
    },
    tx: async (p) => finalExecutionOutcome(committedTx(p)),
    EXPERIMENTAL_tx_status: async (p) => {
      const c = committedTx(p)
      return { ...finalExecutionOutcome(c), receipts: receiptViews(c) }
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
      if (!r.success) throw parseError(`not a JSON-RPC 2.0 request: ${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message}`)
      id = r.data.id
      const m = Object.hasOwn(methods, r.data.method) ? methods[r.data.method] : undefined
      if (m == null) throw methodNotFound(r.data.method)
      reply(res, { jsonrpc: '2.0', id, result: await m(r.data.params) })
    } catch (err) {
      if (err instanceof RpcFailure) { reply(res, { jsonrpc: '2.0', id, error: err.body }); return }
      reply(res, { jsonrpc: '2.0', id, error: internalError((err as Error).message) })
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
