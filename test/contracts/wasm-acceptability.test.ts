import assert from 'node:assert/strict'
import { contractWasm } from './helpers.ts'
import { inspectWasm } from '../../contracts/harness/index.ts'

// The host functions a contract may import (near-sys); anything else NEAR fails to link.
const NEAR_HOST_FUNCTIONS = new Set([
  'read_register', 'register_len', 'write_register', 'current_account_id', 'signer_account_id', 'signer_account_pk',
  'predecessor_account_id', 'input', 'block_index', 'block_timestamp', 'epoch_height', 'storage_usage', 'account_balance',
  'account_locked_balance', 'attached_deposit', 'prepaid_gas', 'used_gas', 'random_seed', 'sha256', 'keccak256', 'keccak512',
  'ed25519_verify', 'value_return', 'panic', 'panic_utf8', 'log_utf8', 'log_utf16', 'abort', 'promise_create', 'promise_then',
  'promise_and', 'promise_batch_create', 'promise_batch_then', 'promise_batch_action_create_account', 'promise_batch_action_deploy_contract',
  'promise_batch_action_function_call', 'promise_batch_action_transfer', 'promise_results_count', 'promise_result', 'promise_return',
  'storage_write', 'storage_read', 'storage_remove', 'storage_has_key'
])

describe('contract wasm acceptability (what NEAR checks at deploy)', () => {
  for (const which of ['main', 'relay'] as const) {
    it(`${which}: imports only env host functions`, async () => {
      const report = inspectWasm((await contractWasm())[which])
      assert.ok(report.imports.length > 0)
      for (const imp of report.imports) {
        assert.equal(imp.module, 'env', `${imp.module}.${imp.name}`)
        assert.equal(imp.kind, 0, `${imp.name} must be a function import`)
        assert.ok(NEAR_HOST_FUNCTIONS.has(imp.name), `${imp.name} is not a NEAR host function`)
      }
    })

    it(`${which}: every exported method is () -> () and no post-MVP feature is used`, async () => {
      const report = inspectWasm((await contractWasm())[which])
      assert.ok(report.exportedFunctions.length > 2)
      for (const f of report.exportedFunctions) assert.deepEqual([f.name, f.params, f.results], [f.name, 0, 0])
      assert.deepEqual(report.forbidden, [])
    })
  }

  it('the inspector catches forbidden features (bulk memory, SIMD, multi-value, bad imports)', () => {
    // (module (import "js" "f" (func)) (type (func (result i32 i32))) (memory 1)
    //   (func (memory.fill (i32.const 0) (i32.const 0) (i32.const 0))) (func (block (result i32 i32) ...)))
    const mod = Uint8Array.from([
      0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
      1, 9, 2, 0x60, 0, 0, 0x60, 0, 2, 0x7f, 0x7f, // types: ()->(), ()->(i32,i32)
      2, 8, 1, 2, 0x6a, 0x73, 1, 0x66, 0, 0, // import "js" "f" func type 0
      3, 3, 2, 0, 0, // two functions of type 0
      5, 3, 1, 0, 1, // memory 1
      10, 25, 2,
      11, 0, 0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 11, 0, 0x0b, // memory.fill
      11, 0, 0x02, 1, 0x41, 1, 0x41, 2, 0x0b, 0x1a, 0x1a, 0x0b // block type 1 (multi-value)
    ])
    const report = inspectWasm(mod)
    assert.equal(report.imports[0].module, 'js')
    assert.ok(report.forbidden.some(f => f.includes('multi-value function type')))
    assert.ok(report.forbidden.some(f => f.includes('0xFC')))
    assert.ok(report.forbidden.some(f => f.includes('multi-value block type')))
  })
})
