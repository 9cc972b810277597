/** A transaction the chain refused before execution, carrying NEAR's InvalidTxError shape for RPC replies. */
export class InvalidTransactionError extends Error {
  override name = 'InvalidTransactionError'
  constructor (message: string, readonly invalidTxError: Record<string, unknown> | string) {
    super(message)
  }
}

export class UnknownAccountError extends Error {
  override name = 'UnknownAccountError'
  constructor (readonly accountId: string) { super(`account ${accountId} does not exist while viewing`) }
}

export class UnknownAccessKeyError extends Error {
  override name = 'UnknownAccessKeyError'
  constructor (readonly publicKey: string) { super(`access key ${publicKey} does not exist while viewing`) }
}

export class NoContractCodeError extends Error {
  override name = 'NoContractCodeError'
  constructor (readonly accountId: string) { super(`contract code for ${accountId} does not exist`) }
}

export class StateTooLargeError extends Error {
  override name = 'StateTooLargeError'
  constructor (readonly accountId: string) { super(`state of contract ${accountId} is too large to be viewed`) }
}

export class UnknownBlockError extends Error {
  override name = 'UnknownBlockError'
  constructor (readonly reference: unknown) { super(`block ${JSON.stringify(reference)} is unknown`) }
}

export class ReplayMismatchError extends Error {
  override name = 'ReplayMismatchError'
}
