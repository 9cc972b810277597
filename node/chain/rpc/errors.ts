/**
 * NEAR's JSON-RPC error shapes (nearcore's `RpcError`): `name` is REQUEST_VALIDATION_ERROR (PARSE_ERROR,
 * METHOD_NOT_FOUND), HANDLER_ERROR (the method's own errors: UNKNOWN_ACCOUNT, NO_CONTRACT_CODE, ...) or
 * INTERNAL_ERROR; `cause` holds the name and its `info`; `code`, `message` and `data` are the legacy fields.
 */
import type { z } from 'zod'

export class RpcFailure extends Error {
  override name = 'RpcFailure'
  constructor (readonly body: Record<string, unknown>) { super(String(body.message ?? 'rpc error')) }
}

export const handlerError = (name: string, info: Record<string, unknown>, extra: Record<string, unknown> = {}): RpcFailure =>
  new RpcFailure({ name: 'HANDLER_ERROR', cause: { name, info }, code: -32000, message: 'Server error', data: info.error_message ?? name, ...extra })

export const parseError = (msg: string): RpcFailure =>
  new RpcFailure({ name: 'REQUEST_VALIDATION_ERROR', cause: { name: 'PARSE_ERROR', info: { error_message: msg } }, code: -32700, message: 'Parse error', data: msg })

export const methodNotFound = (method: string): RpcFailure =>
  new RpcFailure({ name: 'REQUEST_VALIDATION_ERROR', cause: { name: 'METHOD_NOT_FOUND', info: { method_name: method } }, code: -32601, message: 'Method not found', data: method })

export const internalError = (msg: string): Record<string, unknown> =>
  ({ name: 'INTERNAL_ERROR', cause: { name: 'INTERNAL_ERROR', info: { error_message: msg } }, code: -32000, message: 'Server error', data: msg })

/** Validates a method's params; a mismatch is a PARSE_ERROR naming the bad field, as nearcore's "Failed parsing args". */
export function params<T> (schema: z.ZodType<T>, p: unknown): T {
  const r = schema.safeParse(p)
  if (!r.success) {
    const issue = r.error.issues[0]
    throw parseError(`Failed parsing args: ${issue.path.length > 0 ? issue.path.join('.') + ': ' : ''}${issue.message}`)
  }
  return r.data
}
