/**
 * Named errors of the storage layer. Each carries the CID it is about, so that a CLI message, a log line
 * or a retry policy can say exactly which content failed.
 */
import type { CID } from 'multiformats/cid'

export class StorageError extends Error {
  override name = 'StorageError'
  readonly cid: string
  constructor (cid: CID | string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.cid = cid.toString()
  }
}

/** No peer delivered the content: nobody provides it, no provider was reachable, or none answered before the deadline. */
export class ContentNotFoundError extends StorageError {
  override name = 'ContentNotFoundError'
}

/** Some of the content arrived, but not all of it before the deadline. */
export class FetchTimeoutError extends StorageError {
  override name = 'FetchTimeoutError'
}

/** The content is larger than its manifest declares, or than the caller allows. */
export class ContentTooLargeError extends StorageError {
  override name = 'ContentTooLargeError'
  constructor (cid: CID | string, message: string, readonly limit: number, options?: { cause?: unknown }) {
    super(cid, message, options)
  }
}

/** The bytes do not hash to what the manifest (or an anchor) says. */
export class HashMismatchError extends StorageError {
  override name = 'HashMismatchError'
  constructor (cid: CID | string, message: string, readonly expected: string, readonly actual: string) {
    super(cid, message)
  }
}

/** The content is there but is not what was asked for (not a dataset manifest, not a checkpoint folder...). */
export class InvalidContentError extends StorageError {
  override name = 'InvalidContentError'
}

/** The input given to an import cannot be turned into a dataset. */
export class UnsupportedInputError extends Error {
  override name = 'UnsupportedInputError'
}

/** A shard index outside a dataset's shards; the message says how many there are. */
export class NoSuchShardError extends StorageError {
  override name = 'NoSuchShardError'
}

/** `pin rm` of content that is not pinned. */
export class NotPinnedError extends StorageError {
  override name = 'NotPinnedError'
}
