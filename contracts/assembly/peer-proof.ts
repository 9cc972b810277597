// Proof that whoever binds a libp2p peer id to an account holds the peer's key: an ed25519 signature by the
// peer's key over a message naming this contract, the job and the account (so it cannot be replayed to another
// account, job or deployment). Only Ed25519 peer ids (identity multihash of the protobuf public key, the
// `12D3KooW…` form every nearai node has) can be checked; others are refused.
import * as env from './env'
import { panic, utf8 } from './near'

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
// identity multihash (0x00), length 36 (0x24), protobuf PublicKey { Type: Ed25519 (0x08 0x01), Data: 32 bytes (0x12 0x20) }
const ED25519_PEER_PREFIX: u8[] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20]

/** Base58btc to bytes; panics on a character outside the alphabet. */
export function base58Decode (s: string): Uint8Array {
  const le: u8[] = [] // the number, little-endian bytes
  for (let i = 0; i < s.length; i++) {
    let carry = B58.indexOf(s.charAt(i))
    if (carry < 0) panic('not base58: ' + s)
    for (let j = 0; j < le.length; j++) {
      carry += <i32>le[j] * 58
      le[j] = <u8>(carry & 0xff)
      carry >>= 8
    }
    while (carry > 0) { le.push(<u8>(carry & 0xff)); carry >>= 8 }
  }
  let zeros = 0
  while (zeros < s.length && s.charCodeAt(zeros) == 49) zeros++ // each leading '1' is a zero byte
  const out = new Uint8Array(zeros + le.length)
  for (let i = 0; i < le.length; i++) out[zeros + i] = le[le.length - 1 - i]
  return out
}

/** The 32-byte Ed25519 public key a peer id embeds; panics for any other kind of peer id. */
export function ed25519KeyOfPeer (peer: string): Uint8Array {
  const b = base58Decode(peer)
  let ok = b.length == 38
  for (let i = 0; ok && i < ED25519_PEER_PREFIX.length; i++) ok = b[i] == ED25519_PEER_PREFIX[i]
  if (!ok) panic('peer_id ' + peer + ' is not an Ed25519 peer id (12D3KooW…): its key cannot be checked')
  return b.subarray(6, 38)
}

function hexValue (c: i32): i32 {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  return -1
}

/** Exactly `n` bytes from 2n lowercase hex characters; panics naming `what` otherwise. */
export function hexBytes (s: string, n: i32, what: string): Uint8Array {
  if (s.length != 2 * n) panic(what + ' must be ' + (2 * n).toString() + ' lowercase hex characters')
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    const hi = hexValue(s.charCodeAt(2 * i))
    const lo = hexValue(s.charCodeAt(2 * i + 1))
    if (hi < 0 || lo < 0) panic(what + ' must be ' + (2 * n).toString() + ' lowercase hex characters')
    out[i] = <u8>((hi << 4) | lo)
  }
  return out
}

/** The message a peer signs to bind itself to `account` on `job` of the contract `contract`. */
export function registrationMessage (contract: string, job: string, account: string): string {
  return 'nearai/register-trainer/v1\n' + contract + '\n' + job + '\n' + account
}

/** Panics unless `signatureHex` is the peer's ed25519 signature of `message`. */
export function requirePeerSignature (peer: string, message: string, signatureHex: string): void {
  const key = ed25519KeyOfPeer(peer)
  const sig = hexBytes(signatureHex, 64, 'peer_signature')
  const msg = utf8(message)
  const ok = env.ed25519_verify(64, <u64>sig.dataStart, <u64>msg.byteLength, <u64>changetype<usize>(msg), 32, <u64>key.dataStart)
  if (ok != 1) panic('peer_signature is not ' + peer + '\'s signature of the registration (job, account, contract): only the holder of the peer\'s key can bind it')
}
