/**
 * The libp2p TLS handshake certificate (https://github.com/libp2p/specs/blob/master/tls/tls.md): a self-signed
 * X.509 certificate on a fresh ECDSA P-256 key, carrying the libp2p public key extension
 * (OID 1.3.6.1.4.1.53594.1.1): SEQUENCE { OCTET STRING publicKey (libp2p protobuf), OCTET STRING signature }, the
 * signature made by the peer's libp2p key over "libp2p-tls-handshake:" + the certificate's SubjectPublicKeyInfo.
 * Verifying a remote certificate yields the remote peer id, or a typed error.
 */
import 'reflect-metadata'
import { webcrypto, X509Certificate as NodeX509Certificate, createPrivateKey, randomBytes } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { UnexpectedPeerError } from '@libp2p/interface'
import type { AbortOptions, PeerId, PrivateKey } from '@libp2p/interface'

export const LIBP2P_PUBLIC_KEY_EXTENSION_OID = '1.3.6.1.4.1.53594.1.1'
const SIGNATURE_PREFIX = new TextEncoder().encode('libp2p-tls-handshake:')
/** Valid from an hour ago (clock skew) for 100 years, as go-libp2p does. */
const VALID_BEFORE_MS = 60 * 60 * 1000
const VALID_FOR_MS = 100 * 365 * 24 * 60 * 60 * 1000

/**
 * Node's own WebCrypto, passed to each call: @peculiar/x509's global provider is not set here, since @libp2p/tls
 * (the relayed-connection path) sets it to its own and its keys only work with that one.
 */
const nodeCrypto = webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]

/** The remote's certificate breaks the libp2p TLS rules (not the same as presenting an unexpected identity). */
export class InvalidTlsCertificateError extends Error {
  override name = 'InvalidTlsCertificateError'
}

export interface TlsCertificate {
  /** PEM certificate and PKCS#8 private key, as node:tls takes them. */
  cert: string
  key: string
}

export function signatureData (spki: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIGNATURE_PREFIX.length + spki.length)
  out.set(SIGNATURE_PREFIX, 0)
  out.set(spki, SIGNATURE_PREFIX.length)
  return out
}

export async function generateTlsCertificate (privateKey: PrivateKey, options?: AbortOptions): Promise<TlsCertificate> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])
  const spki = new Uint8Array(await webcrypto.subtle.exportKey('spki', keys.publicKey))
  const signature = await privateKey.sign(signatureData(spki), options)
  options?.signal?.throwIfAborted()
  const extension = encodeSignedKey(publicKeyToProtobuf(privateKey.publicKey), signature)
  const now = Date.now()
  const notAfter = new Date(now + VALID_FOR_MS)
  notAfter.setMilliseconds(0)
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: positiveSerial(),
    notBefore: new Date(now - VALID_BEFORE_MS),
    notAfter,
    signingAlgorithm: alg,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    extensions: [new x509.Extension(LIBP2P_PUBLIC_KEY_EXTENSION_OID, true, extension)]
  }, nodeCrypto)
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))
  const key = createPrivateKey({ key: Buffer.from(pkcs8), format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString()
  return { cert: cert.toString('pem'), key }
}

/**
 * Checks a remote certificate (DER) by the spec's rules and returns the peer id it proves. Throws
 * InvalidTlsCertificateError for a malformed or invalid certificate, UnexpectedPeerError when it proves a valid
 * identity other than `expected`.
 */
export async function verifyTlsCertificate (der: Uint8Array, expected?: PeerId): Promise<PeerId> {
  let nodeCert: NodeX509Certificate
  let cert: x509.X509Certificate
  try {
    nodeCert = new NodeX509Certificate(der)
    cert = new x509.X509Certificate(der)
  } catch (err: any) {
    throw new InvalidTlsCertificateError(`unparseable certificate: ${String(err?.message ?? err)}`)
  }
  const now = Date.now()
  if (cert.notBefore.getTime() > now) throw new InvalidTlsCertificateError('certificate is not valid yet')
  if (cert.notAfter.getTime() < now) throw new InvalidTlsCertificateError('certificate has expired')
  if (!nodeCert.verify(nodeCert.publicKey)) throw new InvalidTlsCertificateError('certificate self-signature is invalid')
  let libp2pExtension: x509.Extension | undefined
  for (const ext of cert.extensions) {
    if (ext.type === LIBP2P_PUBLIC_KEY_EXTENSION_OID) {
      if (libp2pExtension != null) throw new InvalidTlsCertificateError('certificate carries the libp2p public key extension twice')
      libp2pExtension = ext
    } else if (ext.critical) {
      throw new InvalidTlsCertificateError(`certificate carries an unknown critical extension ${ext.type}`)
    }
  }
  if (libp2pExtension == null) throw new InvalidTlsCertificateError('certificate lacks the libp2p public key extension')
  const { publicKey: keyBytes, signature } = decodeSignedKey(new Uint8Array(libp2pExtension.value))
  let remoteKey
  try {
    remoteKey = publicKeyFromProtobuf(keyBytes)
  } catch (err: any) {
    throw new InvalidTlsCertificateError(`libp2p public key extension holds no valid key: ${String(err?.message ?? err)}`)
  }
  const spki = new Uint8Array(cert.publicKey.rawData)
  if (!(await remoteKey.verify(signatureData(spki), signature))) {
    throw new InvalidTlsCertificateError('libp2p public key extension signature does not match the certificate key')
  }
  const remotePeer = peerIdFromPublicKey(remoteKey)
  if (expected != null && !expected.equals(remotePeer)) {
    throw new UnexpectedPeerError(`dialled peer ${expected.toString()} but the remote proved identity ${remotePeer.toString()}`)
  }
  return remotePeer
}

/** A hex serial number, 16 random bytes with the top bit clear so it stays a positive DER INTEGER. */
function positiveSerial (): string {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0] & 0x7f) | 0x01
  return bytes.toString('hex')
}

// --- the extension's value: SEQUENCE { OCTET STRING, OCTET STRING } in DER ---

function derLength (n: number): number[] {
  if (n < 0x80) return [n]
  const out: number[] = []
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff)
  return [0x80 | out.length, ...out]
}

function derTlv (tag: number, body: Uint8Array): Uint8Array {
  const head = [tag, ...derLength(body.length)]
  const out = new Uint8Array(head.length + body.length)
  out.set(head, 0)
  out.set(body, head.length)
  return out
}

export function encodeSignedKey (publicKey: Uint8Array, signature: Uint8Array): Uint8Array {
  const a = derTlv(0x04, publicKey)
  const b = derTlv(0x04, signature)
  const body = new Uint8Array(a.length + b.length)
  body.set(a, 0)
  body.set(b, a.length)
  return derTlv(0x30, body)
}

/** Reads one TLV at `at`; returns its tag, body and where the next begins. */
function readTlv (buf: Uint8Array, at: number): { tag: number, body: Uint8Array, end: number } {
  if (at + 2 > buf.length) throw new InvalidTlsCertificateError('libp2p public key extension is truncated')
  const tag = buf[at]
  let len = buf[at + 1]
  let pos = at + 2
  if (len >= 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 3 || pos + n > buf.length) throw new InvalidTlsCertificateError('libp2p public key extension has a bad length')
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + i]
    pos += n
  }
  if (pos + len > buf.length) throw new InvalidTlsCertificateError('libp2p public key extension is truncated')
  return { tag, body: buf.subarray(pos, pos + len), end: pos + len }
}

export function decodeSignedKey (value: Uint8Array): { publicKey: Uint8Array, signature: Uint8Array } {
  const seq = readTlv(value, 0)
  if (seq.tag !== 0x30 || seq.end !== value.length) throw new InvalidTlsCertificateError('libp2p public key extension is not one SEQUENCE')
  const key = readTlv(seq.body, 0)
  const sig = readTlv(seq.body, key.end)
  if (key.tag !== 0x04 || sig.tag !== 0x04 || sig.end !== seq.body.length) {
    throw new InvalidTlsCertificateError('libp2p public key extension must hold exactly two OCTET STRINGs')
  }
  return { publicKey: key.body, signature: sig.body }
}
