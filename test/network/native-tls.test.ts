/**
 * Native TLS (node/network/native-tls.ts) between real nodes on 127.0.0.1: production nodes agree on /tls/1.0.0
 * run on the TCP socket itself and move bytes intact; a dial whose remote proves another identity than the one
 * dialled is refused; a node with only Noise, and one with only @libp2p/tls, still connect to a production node;
 * a relayed connection (no raw socket) runs the same protocol over the relay stream. Plus the certificate checks.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes, webcrypto, X509Certificate } from 'node:crypto'
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tls } from '@libp2p/tls'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Stream } from '@libp2p/interface'
import type { PeerNode } from '../../node/network/peer-node.ts'
import { NATIVE_TLS_PROTOCOL, isSecuredNatively } from '../../node/network/native-tls.ts'
import {
  InvalidTlsCertificateError, decodeSignedKey, encodeSignedKey, generateTlsCertificate, verifyTlsCertificate
} from '../../node/network/tls-certificate.ts'
import { startTestNode, waitFor } from '../helpers/network.ts'
import { startNattedPeer } from './nat.ts'

const SINK = '/nearai-test/sha256-sink/1.0.0'

/** Answers each stream with the SHA-256 of everything it received. */
async function hashSink (libp2p: Libp2p<any>): Promise<void> {
  await libp2p.handle(SINK, async (stream: Stream) => {
    const h = createHash('sha256')
    for await (const chunk of stream) h.update(chunk.subarray())
    stream.send(h.digest())
    await stream.close()
  }, { runOnLimitedConnection: true })
}

async function sendAndHash (stream: Stream, data: Uint8Array): Promise<string> {
  for (let at = 0; at < data.length; at += 256 * 1024) {
    if (!stream.send(data.subarray(at, at + 256 * 1024))) await stream.onDrain({ signal: AbortSignal.timeout(20_000) })
  }
  await stream.close()
  const parts: Uint8Array[] = []
  for await (const chunk of stream) parts.push(chunk.subarray())
  return Buffer.concat(parts).toString('hex')
}

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex')
const maConnOf = (conn: Connection): object => (conn as unknown as { maConn: object }).maConn

async function plainNode (encrypter: 'noise' | 'libp2p-tls'): Promise<Libp2p> {
  return await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [encrypter === 'noise' ? noise() : tls()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 1000 }
  })
}

describe('native TLS connection encrypter', function () {
  this.timeout(60_000)
  const nodes: PeerNode[] = []
  const others: Libp2p[] = []
  let a: PeerNode
  let b: PeerNode

  before(async () => {
    a = await startTestNode('peer')
    b = await startTestNode('peer')
    nodes.push(a, b)
    await hashSink(b.libp2p)
  })

  after(async () => {
    await Promise.all([...nodes, ...others].map(async n => await n.stop()))
  })

  it('two production nodes connect over native TLS on the TCP socket and copy bytes intact', async () => {
    const conn = await a.libp2p.dial(multiaddr(b.multiaddrs[0]))
    assert.equal(conn.encryption, NATIVE_TLS_PROTOCOL)
    assert.equal(conn.multiplexer, '/yamux/1.0.0')
    assert.equal(isSecuredNatively(maConnOf(conn)), true, 'the dialler took the socket over')
    await waitFor('the inbound connection', () => b.libp2p.getConnections(peerIdFromString(a.peerId)).length > 0)
    const inbound = b.libp2p.getConnections(peerIdFromString(a.peerId))[0]
    assert.equal(inbound.encryption, NATIVE_TLS_PROTOCOL)
    assert.equal(isSecuredNatively(maConnOf(inbound)), true, 'the listener took the socket over')
    const data = randomBytes(6 * 1024 * 1024 + 17)
    const stream = await conn.newStream(SINK)
    assert.equal(await sendAndHash(stream, data), sha256(data))
    // Closing ends TLS and the TCP connection: the remote sees the connection go.
    await conn.close()
    await waitFor('the listener to see the connection closed', () => inbound.status === 'closed', 10_000)
  })

  it('an aborted connection is closed on both sides (the reset goes through TLS, not under it)', async () => {
    const conn = await a.libp2p.dial(multiaddr(b.multiaddrs[0]))
    assert.equal(isSecuredNatively(maConnOf(conn)), true)
    await waitFor('the inbound connection', () => b.libp2p.getConnections(peerIdFromString(a.peerId)).length > 0)
    const inbound = b.libp2p.getConnections(peerIdFromString(a.peerId))[0]
    conn.abort(new Error('test abort'))
    assert.equal(conn.status, 'aborted')
    await waitFor('the listener to see the aborted connection go', () => inbound.status !== 'open', 10_000)
  })

  it('a connection refused after the handshake (a gater) is torn down without crashing Node', async () => {
    const gated = await startTestNode('peer', { connectionGater: { denyInboundEncryptedConnection: (peer) => peer.toString() === a.peerId } })
    nodes.push(gated)
    const gatedId = peerIdFromString(gated.peerId)
    for (let i = 0; i < 3; i++) {
      // The dialler may finish its side before the listener's gater refuses: then the connection closes under it.
      await a.libp2p.dial(multiaddr(gated.multiaddrs[0]), { signal: AbortSignal.timeout(10_000) }).catch(() => undefined)
      await waitFor('the refused connection to close', () => a.libp2p.getConnections(gatedId).length === 0, 10_000)
    }
    assert.equal(gated.libp2p.getConnections().length, 0)
    // Still alive and able to connect elsewhere.
    const conn = await a.libp2p.dial(multiaddr(b.multiaddrs[0]))
    assert.equal(conn.encryption, NATIVE_TLS_PROTOCOL)
  })

  it('refuses a remote that proves another identity than the one dialled', async () => {
    const impostorTarget = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const port = /\/tcp\/(\d+)/.exec(b.multiaddrs[0])?.[1]
    await assert.rejects(
      a.libp2p.dial(multiaddr(`/ip4/127.0.0.1/tcp/${port}/p2p/${impostorTarget.toString()}`), { signal: AbortSignal.timeout(20_000) }),
      (err: Error) => {
        assert.match(err.message, new RegExp(`dialled peer ${impostorTarget.toString()} but the remote proved identity ${b.peerId}`))
        return true
      })
    assert.equal(a.libp2p.getConnections(impostorTarget).length, 0)
  })

  it('dials aborted at any point of the TLS handshake end without an uncaught socket error', async () => {
    // An uncaught 'error' on a TLS socket ends the process (and fails this test through mocha's handler).
    const errors: Error[] = []
    const onUncaught = (err: Error): void => { errors.push(err) }
    process.on('uncaughtException', onUncaught)
    try {
      const target = multiaddr(b.multiaddrs[0])
      for (let i = 0; i < 40; i++) {
        const controller = new AbortController()
        const dial = a.libp2p.dial(target, { signal: controller.signal, force: true } as any)
        // From before the first byte to well inside the handshake.
        setTimeout(() => { controller.abort(new Error('dial aborted by the test')) }, i % 8)
        await dial.then(async (c) => { await c.close() }, () => {})
      }
      await new Promise(resolve => setTimeout(resolve, 300))
    } finally {
      process.off('uncaughtException', onUncaught)
    }
    assert.deepEqual(errors.map(e => e.message), [], 'no socket error went uncaught')
    // The node still works: a fresh connection carries bytes.
    const c = await a.libp2p.dial(multiaddr(b.multiaddrs[0]), { force: true } as any)
    assert.equal(c.encryption, NATIVE_TLS_PROTOCOL)
    await c.close()
  })

  it('a node with only Noise connects to a production node, both ways, over Noise', async () => {
    const plain = await plainNode('noise')
    others.push(plain)
    await hashSink(plain)
    const out = await plain.dial(multiaddr(b.multiaddrs[0]))
    assert.equal(out.encryption, '/noise')
    const data = randomBytes(300_000)
    assert.equal(await sendAndHash(await out.newStream(SINK), data), sha256(data))
    await out.close()
    const back = await a.libp2p.dial(plain.getMultiaddrs()[0])
    assert.equal(back.encryption, '/noise')
    assert.equal(await sendAndHash(await back.newStream(SINK), data), sha256(data))
  })

  it('interoperates with @libp2p/tls: same protocol and certificate, both ways', async () => {
    const plain = await plainNode('libp2p-tls')
    others.push(plain)
    await hashSink(plain)
    const out = await plain.dial(multiaddr(b.multiaddrs[0]))
    assert.equal(out.encryption, NATIVE_TLS_PROTOCOL)
    const data = randomBytes(1_000_000)
    assert.equal(await sendAndHash(await out.newStream(SINK), data), sha256(data))
    const back = await a.libp2p.dial(plain.getMultiaddrs()[0])
    assert.equal(back.encryption, NATIVE_TLS_PROTOCOL)
    assert.equal(isSecuredNatively(maConnOf(back)), true)
    assert.equal(await sendAndHash(await back.newStream(SINK), data), sha256(data))
  })

  it('a relayed connection (no raw socket) runs the same TLS over the relay stream', async () => {
    const boot = await startTestNode('bootstrap')
    nodes.push(boot)
    const natted = await startNattedPeer(boot.multiaddrs[0], boot.peerId)
    nodes.push(natted)
    await hashSink(natted.libp2p)
    let relayAddr = ''
    await waitFor('a relay reservation', () => {
      relayAddr = natted.multiaddrs.find(m => m.includes('/p2p-circuit')) ?? ''
      return relayAddr !== ''
    })
    const conn = await a.libp2p.dial(multiaddr(relayAddr), { signal: AbortSignal.timeout(20_000) })
    assert.ok(conn.limits != null, 'the connection is relayed')
    assert.equal(conn.encryption, NATIVE_TLS_PROTOCOL)
    assert.equal(isSecuredNatively(maConnOf(conn)), false)
    const data = randomBytes(64 * 1024)
    const stream = await conn.newStream(SINK, { runOnLimitedConnection: true })
    assert.equal(await sendAndHash(stream, data), sha256(data))
  })
})

describe('libp2p TLS certificate', () => {
  it('proves the signing peer and rejects an unexpected one', async () => {
    const key = await generateKeyPair('Ed25519')
    const der = new X509Certificate((await generateTlsCertificate(key)).cert).raw
    assert.equal((await verifyTlsCertificate(der)).toString(), peerIdFromPrivateKey(key).toString())
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    await assert.rejects(verifyTlsCertificate(der, other), { name: 'UnexpectedPeerError' })
  })

  it('rejects a certificate without the libp2p extension, or whose extension another key signed', async () => {
    const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
    const crypto = webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]
    const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']) as any
    const bare = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '01', name: 'CN=x', keys, signingAlgorithm: alg }, crypto)
    await assert.rejects(verifyTlsCertificate(new Uint8Array(bare.rawData)), InvalidTlsCertificateError)
    // The extension of a real certificate (key and signature over *its* key) grafted onto another certificate.
    const real = new x509.X509Certificate(new X509Certificate((await generateTlsCertificate(await generateKeyPair('Ed25519'))).cert).raw)
    const ext = real.getExtension('1.3.6.1.4.1.53594.1.1')!
    const grafted = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '02', name: 'CN=x', keys, signingAlgorithm: alg, extensions: [new x509.Extension(ext.type, true, ext.value)]
    }, crypto)
    await assert.rejects(verifyTlsCertificate(new Uint8Array(grafted.rawData)), /signature does not match/)
  })

  it('parses its extension strictly', () => {
    const v = encodeSignedKey(new Uint8Array(300).fill(1), new Uint8Array(64).fill(2))
    const back = decodeSignedKey(v)
    assert.equal(back.publicKey.length, 300)
    assert.equal(back.signature.length, 64)
    assert.throws(() => decodeSignedKey(v.subarray(0, v.length - 1)), InvalidTlsCertificateError)
    assert.throws(() => decodeSignedKey(new Uint8Array([...v, 0])), InvalidTlsCertificateError)
  })
})
