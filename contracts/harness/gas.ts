/**
 * Gas, simplified: a fixed cost per host call plus a cost per byte moved through the host, and the
 * gas attached to promises. Not NEAR's fee schedule (wasm instructions are not metered), but enough
 * to bound runaway host-call loops and to fail with NEAR's out-of-gas error.
 */
import { ContractError } from './errors.ts'

export const HOST_CALL_GAS = 5_000_000_000n // 5 Ggas
export const BYTE_GAS = 10_000_000n
/** Gas per metering tick (a function entry or a loop iteration): 300 Tgas allows 30 million ticks. */
export const TICK_GAS = 10_000_000n
export const DEFAULT_PREPAID_GAS = 300_000_000_000_000n // 300 Tgas, NEAR's maximum per transaction

export class GasCounter {
  used = 0n
  constructor (readonly prepaid: bigint) {}

  get remaining (): bigint { return this.prepaid - this.used }

  charge (gas: bigint): void {
    this.used += gas
    if (this.used > this.prepaid) {
      this.used = this.prepaid
      throw new ContractError('GasExceeded', 'Exceeded the prepaid gas.')
    }
  }
}
