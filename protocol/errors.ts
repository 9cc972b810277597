/**
 * Errors raised at the edge where untrusted bytes (network, chain, disk, user input) are parsed.
 */

/** A message from the network or the chain did not match its schema. */
export class InvalidMessageError extends Error {
  override name = 'InvalidMessageError'
  constructor (message: string, readonly details?: unknown) {
    super(message)
  }
}

/** A message was larger than its protocol allows. */
export class MessageTooLargeError extends InvalidMessageError {
  override name = 'MessageTooLargeError'
}
