/** Why a contract call failed, named after nearcore's HostError/FunctionCallError kinds. */
export type ContractErrorKind =
  | 'GuestPanic' | 'GasExceeded' | 'ProhibitedInView' | 'WasmTrap' | 'MethodNotFound' | 'CompilationError'
  | 'InvalidPromiseIndex' | 'InvalidRegisterId' | 'MemoryAccessViolation' | 'LackBalanceForState'
  | 'AccountDoesNotExist' | 'NotEnoughBalance' | 'BalanceExceeded'

/** A failed contract execution; `kind` says which NEAR error it stands for. */
export class ContractError extends Error {
  override name = 'ContractError'
  constructor (readonly kind: ContractErrorKind, message: string) {
    super(message)
  }
}
