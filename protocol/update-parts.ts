/**
 * Update commitments: a contributor's update to one all-reduce part, addressed by content. A plaintext
 * contribution payload is `codec.encode(values of the part)`; the part's reducer lists the SHA-256 of the
 * payload it combined (the `digest` of a result's contributor), and a CIDv1 with the `raw` codec and a
 * sha2-256 multihash of those bytes carries exactly that digest. So the digest a checkpoint lists is enough
 * to fetch the payload from whoever holds it, and the fetch itself verifies the bytes.
 *
 * Pure: no I/O.
 */
import { z } from 'zod'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'
import { InvalidMessageError } from './errors.ts'
import { SHA256_HEX_PATTERN } from './primitives.ts'

/** The multicodec of a raw block (the bytes themselves). */
export const RAW_CODEC = 0x55
/** The multihash code of sha2-256. */
export const SHA2_256_CODE = 0x12

/** The update codecs a job spec may name (node/compression): how a part's values are encoded into its payload. */
export const UPDATE_CODEC_IDS = ['none', 'fp16', 'int8'] as const
export const UpdateCodecId = z.enum(UPDATE_CODEC_IDS)
export type UpdateCodecId = z.infer<typeof UpdateCodecId>

/** A digest that cannot name an update part: not 64 lowercase hex characters, or a CID of another kind. */
export class InvalidUpdatePartError extends InvalidMessageError {
  override name = 'InvalidUpdatePartError'
}

/** The CID (v1, raw, sha2-256) of the contribution payload whose SHA-256 is `digestHex`; nothing is hashed. */
export function updatePartCid (digestHex: string): CID {
  if (typeof digestHex !== 'string' || !SHA256_HEX_PATTERN.test(digestHex)) {
    throw new InvalidUpdatePartError(`an update part's digest must be 64 lowercase hex characters (SHA-256), got ${JSON.stringify(digestHex)}`)
  }
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256_CODE, Uint8Array.from(Buffer.from(digestHex, 'hex'))))
}

/**
 * The digest (lowercase hex) an update part's CID commits to: the inverse of updatePartCid. A CID that is not
 * v1, raw and sha2-256 (32 bytes) names no update part and is refused.
 */
export function updatePartDigest (cid: CID): string {
  if (cid.version !== 1 || cid.code !== RAW_CODEC || cid.multihash.code !== SHA2_256_CODE || cid.multihash.digest.byteLength !== 32) {
    throw new InvalidUpdatePartError(`${cid.toString()} is not an update part (a CIDv1 of a raw block with a sha2-256 multihash)`)
  }
  return Buffer.from(cid.multihash.digest).toString('hex')
}

/** Whether `cid` is the update part with SHA-256 `digestHex` (false for a malformed digest or another kind of CID). */
export function isUpdatePartCid (cid: CID, digestHex: string): boolean {
  try {
    return updatePartDigest(cid) === digestHex
  } catch {
    return false
  }
}
