/**
 * The `query` method: view_account, view_access_key, view_access_key_list, view_code, view_state and
 * call_function, with NEAR's request and response shapes and its query errors (UNKNOWN_ACCOUNT,
 * UNKNOWN_ACCESS_KEY, NO_CONTRACT_CODE, TOO_LARGE_CONTRACT_STATE, CONTRACT_EXECUTION_ERROR, UNKNOWN_BLOCK,
 * GARBAGE_COLLECTED_BLOCK). State is the head's: like a non-archival node, the dev chain keeps no older state.
 */
import { z } from 'zod'
import type { DevChain } from '../dev-chain/chain.ts'
import { NoContractCodeError, StateTooLargeError, UnknownAccessKeyError, UnknownAccountError, UnknownBlockError } from '../dev-chain/errors.ts'
import { ContractError } from '../../../contracts/harness/index.ts'
import { handlerError, params, parseError } from './errors.ts'
import { permissionView } from './outcome.ts'

const base64 = z.string().max(8 * 1024 * 1024).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64')
const accountId = z.string().min(2).max(64)
const reference = {
  finality: z.enum(['optimistic', 'near-final', 'final']).optional(),
  block_id: z.union([z.string().min(1).max(64), z.number().int().nonnegative()]).optional().nullable()
}
const queryRequest = z.discriminatedUnion('request_type', [
  z.object({ request_type: z.literal('view_account'), account_id: accountId, ...reference }),
  z.object({ request_type: z.literal('view_access_key'), account_id: accountId, public_key: z.string().min(1).max(200), ...reference }),
  z.object({ request_type: z.literal('view_access_key_list'), account_id: accountId, ...reference }),
  z.object({ request_type: z.literal('view_code'), account_id: accountId, ...reference }),
  z.object({ request_type: z.literal('view_state'), account_id: accountId, prefix_base64: base64, include_proof: z.boolean().optional(), ...reference }),
  z.object({ request_type: z.literal('call_function'), account_id: accountId, method_name: z.string().min(1).max(256), args_base64: base64, ...reference })
])
export const QUERY_REQUEST_TYPES = queryRequest.options.map(o => o.shape.request_type.value)

/** Parses a query's params; an unknown request_type is answered as nearcore's serde does: "unknown variant". */
function parseQuery (p: unknown): z.infer<typeof queryRequest> {
  const type = (p as { request_type?: unknown } | null)?.request_type
  if (typeof type === 'string' && !(QUERY_REQUEST_TYPES as string[]).includes(type)) {
    throw parseError(`Failed parsing args: unknown variant \`${type.slice(0, 100)}\`, expected one of ${QUERY_REQUEST_TYPES.map(t => `\`${t}\``).join(', ')}`)
  }
  return params(queryRequest, p)
}

export async function query (chain: DevChain, p: unknown): Promise<unknown> {
  const q = parseQuery(p)
  const head = chain.head
  const at = { block_height: Number(head.height), block_hash: head.hash }
  if (q.block_id != null) {
    let b
    try { b = chain.block({ blockId: q.block_id }) } catch (err) {
      if (err instanceof UnknownBlockError) throw handlerError('UNKNOWN_BLOCK', { block_reference: { block_id: q.block_id } })
      throw err
    }
    if (b.hash !== head.hash) throw handlerError('GARBAGE_COLLECTED_BLOCK', { block_height: Number(b.height), block_hash: b.hash, error_message: 'the dev chain keeps only the state of its head block' })
  }
  try {
    switch (q.request_type) {
      case 'view_account': {
        const a = chain.viewAccount(q.account_id)
        return { amount: a.amount.toString(), locked: a.locked.toString(), code_hash: a.codeHash, storage_usage: Number(a.storageUsage), storage_paid_at: 0, ...at }
      }
      case 'view_access_key': {
        const k = chain.viewAccessKey(q.account_id, q.public_key)
        return { nonce: Number(k.nonce), permission: permissionView(k.permission), ...at }
      }
      case 'view_access_key_list':
        return { keys: chain.viewAccessKeyList(q.account_id).map(({ publicKey, key }) => ({ public_key: publicKey, access_key: { nonce: Number(key.nonce), permission: permissionView(key.permission) } })), ...at }
      case 'view_code': {
        const { code, hash } = chain.viewCode(q.account_id)
        return { code_base64: Buffer.from(code).toString('base64'), hash, ...at }
      }
      case 'view_state': {
        const values = chain.viewState(q.account_id, Buffer.from(q.prefix_base64, 'base64'))
        return { values: values.map(v => ({ key: Buffer.from(v.key).toString('base64'), value: Buffer.from(v.value).toString('base64') })), proof: [], ...at }
      }
      case 'call_function': {
        const { result, logs } = await chain.view(q.account_id, q.method_name, Buffer.from(q.args_base64, 'base64'))
        return { result: Array.from(result), logs, ...at }
      }
    }
  } catch (err) {
    if (err instanceof UnknownAccountError) throw handlerError('UNKNOWN_ACCOUNT', { requested_account_id: err.accountId, ...at })
    if (err instanceof UnknownAccessKeyError) throw handlerError('UNKNOWN_ACCESS_KEY', { public_key: err.publicKey, ...at })
    if (err instanceof NoContractCodeError) throw handlerError('NO_CONTRACT_CODE', { contract_account_id: err.accountId, ...at })
    if (err instanceof StateTooLargeError) throw handlerError('TOO_LARGE_CONTRACT_STATE', { contract_account_id: err.accountId, ...at })
    if (err instanceof ContractError) {
      const vmError = err.kind === 'GuestPanic' ? { HostError: { GuestPanic: { panic_msg: err.message } } } : err.kind === 'MethodNotFound' ? { MethodResolveError: 'MethodNotFound' } : { HostError: { [err.kind]: { message: err.message } } }
      throw handlerError('CONTRACT_EXECUTION_ERROR', { vm_error: vmError, error_message: `wasm execution failed with error: ${err.message}`, ...at })
    }
    throw err
  }
}
