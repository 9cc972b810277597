/**
 * The primitive values every message of the protocol is built from, each defined once: peer ids, SHA-256
 * digests, CIDs and job ids, as patterns (for code that checks strings) and as zod schemas (for messages).
 */
import { z } from 'zod'

/** A libp2p peer id as a string (base58btc multihash: `12D3KooW…` for Ed25519 keys, `Qm…` for RSA). */
export const PEER_ID_PATTERN = /^[1-9A-HJ-NP-Za-km-z]{40,100}$/
export const PeerIdString = z.string().regex(PEER_ID_PATTERN, 'expected a peer id')

/** A SHA-256 digest in lowercase hex: weights hashes, shard and file hashes, group hashes, Merkle nodes. */
export const SHA256_HEX_PATTERN = /^[0-9a-f]{64}$/
export const Sha256Hex = z.string().regex(SHA256_HEX_PATTERN, 'expected 64 lowercase hex characters (SHA-256)')

/** A CID as a string: CIDv0 (`Qm…`, base58btc) or CIDv1 in base32 (`b…`), the forms this network writes. */
export const CID_STRING_PATTERN = /^(Qm[1-9A-HJ-NP-Za-km-z]{44}|b[a-z2-7]{20,200})$/
export const CidString = z.string().regex(CID_STRING_PATTERN, 'expected a CID string')

/** A job id: used inside topic names and DHT keys, so restricted to a safe alphabet. */
export const JOB_ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/
export const JobId = z.string().regex(JOB_ID_PATTERN, 'expected a job id')
