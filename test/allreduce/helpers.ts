/** Real libp2p nodes on 127.0.0.1 for the all-reduce tests, and test-only codecs. */
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { gossipsub } from '@libp2p/gossipsub'
import type { PrivateKey } from '@libp2p/interface'
import type { VectorCodec } from '../../node/compression/codec.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'

export const LOOPBACK = '/ip4/127.0.0.1/tcp/0'

export async function startNode (withPubsub = false, privateKey?: PrivateKey): Promise<Libp2p<any>> {
  const services: Record<string, any> = { identify: identify(), ping: ping() }
  if (withPubsub) services.pubsub = gossipsub({ allowPublishToZeroTopicPeers: true, emitSelf: false, globalSignaturePolicy: 'StrictSign' })
  return await createLibp2p({
    ...(privateKey != null ? { privateKey } : {}),
    addresses: { listen: [LOOPBACK] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 1000 },
    services
  })
}

/** `n` nodes dialled into a full mesh; `keys` (optional) gives them fixed identities. */
export async function startConnectedNodes (n: number, withPubsub = false, keys?: PrivateKey[]): Promise<Array<Libp2p<any>>> {
  const nodes = await Promise.all(Array.from({ length: n }, async (_v, i) => await startNode(withPubsub, keys?.[i])))
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) await nodes[i].dial(nodes[j].getMultiaddrs()[0])
  }
  // The dialled side registers its inbound connection a moment later.
  await waitFor('full mesh', () => nodes.every(node => new Set(node.getConnections().map(c => c.remotePeer.toString())).size === n - 1))
  return nodes
}

export async function stopAll (nodes: Array<Libp2p<any> | undefined>): Promise<void> {
  await Promise.all(nodes.map(async n => { try { await n?.stop() } catch {} }))
}

/** Identity codec: the raw fp32 bytes (test-only stand-in for node/compression's 'none'). */
export const identityCodec: VectorCodec = {
  id: 'none',
  encode: (v) => new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)),
  decode: (b) => {
    if (b.byteLength % 4 !== 0) throw new InvalidMessageError(`identity codec: ${b.byteLength} bytes is not a whole number of floats`)
    return new Float32Array(b.slice().buffer)
  }
}

/** Deterministic pseudo-random floats in [-scale, scale). */
export function randomVector (length: number, seed: number, scale = 1): Float32Array {
  let x = (seed * 2654435761) >>> 0 || 1
  const out = new Float32Array(length)
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    out[i] = ((x / 0x100000000) * 2 - 1) * scale
  }
  return out
}

/** Float64 reference of the weighted mean. */
export function weightedMeanReference (vectors: Float32Array[], weights: number[]): Float64Array {
  const out = new Float64Array(vectors[0].length)
  const total = weights.reduce((a, b) => a + b, 0)
  vectors.forEach((v, k) => { for (let i = 0; i < v.length; i++) out[i] += weights[k] * v[i] })
  for (let i = 0; i < out.length; i++) out[i] /= total
  return out
}

export function maxAbsDiff (a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

export function sameBits (a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length)
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length)
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  return true
}

export async function waitFor (what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
