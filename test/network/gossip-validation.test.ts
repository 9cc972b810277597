import assert from 'node:assert/strict'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { RPC } from '@libp2p/gossipsub/message'
import type { PeerNode } from '../../node/network/peer-node.ts'
import { PEERS_TOPIC } from '../../protocol/topics.ts'
import { encodeGossip, MAX_GOSSIP_MESSAGE_BYTES, type GossipMessage, type PeerAnnouncement } from '../../protocol/gossip.ts'
import { INVALID_MESSAGE_WEIGHT } from '../../node/network/gossip-scoring.ts'
import { Matchmaking } from '../../node/allreduce/matchmaking.ts'
import { encodeReadyMessage, jobReadyTopic, type ReadyAnnouncement } from '../../protocol/allreduce.ts'
import { startTestNode, waitFor, LOOPBACK } from '../helpers/network.ts'

const encoder = new TextEncoder()

/** A signed gossipsub message built by hand, exactly as the gossipsub spec lays it out. */
async function signedMessage (key: PrivateKey, topic: string, data: Uint8Array, seq: bigint): Promise<RPC.Message> {
  const seqno = new Uint8Array(8)
  new DataView(seqno.buffer).setBigUint64(0, seq, false)
  const msg: RPC.Message = { from: peerIdFromPrivateKey(key).toMultihash().bytes, data, seqno, topic }
  const toSign = new Uint8Array([...encoder.encode('libp2p-pubsub:'), ...RPC.Message.encode(msg)])
  return { ...msg, signature: await key.sign(toSign), key: publicKeyToProtobuf(key.publicKey) }
}

function announcement (peerId: string, at: number): PeerAnnouncement {
  return { v: 1, type: 'peer-announce', peerId, roles: ['peer'], jobs: [], at }
}

/** A peer that speaks raw gossipsub frames to `victim`: no local validation, no honest signing. */
async function rawAttacker (victim: PeerNode): Promise<{ key: PrivateKey, node: Libp2p, sendRaw: (topic: string, messages: RPC.Message[]) => Promise<void> }> {
  const key = await generateKeyPair('Ed25519')
  const node = await createLibp2p({
    privateKey: key,
    addresses: { listen: [LOOPBACK] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() }
  })
  // Advertise gossipsub so the victim treats the attacker as a gossip peer and keeps a score for it.
  await node.handle('/meshsub/1.1.0', () => {})
  await node.dial(victim.libp2p.getMultiaddrs()[0])
  await waitFor('the victim to see the attacker as a gossip peer', () => victim.libp2p.services.pubsub.getPeers().some(p => p.equals(node.peerId)), 10_000)
  const sendRaw = async (topic: string, messages: RPC.Message[]): Promise<void> => {
    const stream = await node.dialProtocol(victim.libp2p.getMultiaddrs()[0], '/meshsub/1.1.0')
    const lp = lpStream(stream, { maxDataLength: 4 * 1024 * 1024 })
    await lp.write(RPC.encode({ subscriptions: [{ subscribe: true, topic }], messages, control: undefined }))
    await new Promise(resolve => setTimeout(resolve, 300))
    await stream.close()
  }
  return { key, node, sendRaw }
}

describe('gossip validation: malformed messages never reach the application', function () {
  this.timeout(120_000)
  let victim: PeerNode
  let attackerKey: PrivateKey
  let attacker: Libp2p
  const delivered: GossipMessage[] = []

  let send: (topic: string, messages: RPC.Message[]) => Promise<void>

  before(async () => {
    victim = await startTestNode('peer')
    victim.gossip.subscribe(PEERS_TOPIC, (msg) => { delivered.push(msg) })
    const raw = await rawAttacker(victim)
    attackerKey = raw.key
    attacker = raw.node
    send = raw.sendRaw
  })

  after(async () => {
    await attacker?.stop()
    await victim?.stop()
  })

  async function sendRaw (messages: RPC.Message[]): Promise<void> {
    await send(PEERS_TOPIC, messages)
  }

  it('delivers a well-formed, correctly signed message (control case for the raw sender)', async () => {
    const me = attacker.peerId.toString()
    await sendRaw([await signedMessage(attackerKey, PEERS_TOPIC, encodeGossip(announcement(me, 1)), 1n)])
    await waitFor('the valid message', () => delivered.length === 1, 10_000)
    assert.equal(delivered[0].type, 'peer-announce')
  })

  it('drops a message whose signature does not verify', async () => {
    const me = attacker.peerId.toString()
    const good = await signedMessage(attackerKey, PEERS_TOPIC, encodeGossip(announcement(me, 10)), 10n)
    const forged = { ...good, signature: Uint8Array.from(good.signature!, (b, i) => i === 0 ? b ^ 0xff : b) }
    const otherKey = await generateKeyPair('Ed25519')
    const wrongKey = { ...(await signedMessage(attackerKey, PEERS_TOPIC, encodeGossip(announcement(me, 11)), 11n)), key: publicKeyToProtobuf(otherKey.publicKey) }
    await sendRaw([forged, wrongKey])
    // A later valid message proves the stream was processed, so the absence of the forged ones is meaningful.
    await sendRaw([await signedMessage(attackerKey, PEERS_TOPIC, encodeGossip(announcement(me, 12)), 12n)])
    await waitFor('the later valid message', () => delivered.some(m => m.type === 'peer-announce' && m.at === 12), 10_000)
    const ats = delivered.map(m => m.type === 'peer-announce' ? m.at : -1)
    assert.ok(!ats.includes(10) && !ats.includes(11), `forged messages were not delivered (got ${ats.join(',')})`)
  })
  it('rejects wrong schema, oversize and impersonating messages, and lowers the sender score', async () => {
    const me = attacker.peerId.toString()
    const rejectedBefore = victim.gossip.stats.rejected
    const wrongSchema = encoder.encode(JSON.stringify({ v: 1, type: 'peer-announce', peerId: me, roles: ['king'], jobs: [], at: 2 }))
    const notJson = encoder.encode('{"v":1,"type":')
    const oversize = encodeGossip({ ...announcement(me, 3), jobs: Array.from({ length: 64 }, () => 'x'.repeat(64)) })
    const padded = new Uint8Array(MAX_GOSSIP_MESSAGE_BYTES + 10)
    padded.set(oversize)
    padded.fill(0x20, oversize.length) // trailing whitespace: still JSON, but too large
    const impersonating = encodeGossip(announcement(victim.peerId, 4))
    await sendRaw([
      await signedMessage(attackerKey, PEERS_TOPIC, wrongSchema, 2n),
      await signedMessage(attackerKey, PEERS_TOPIC, notJson, 3n),
      await signedMessage(attackerKey, PEERS_TOPIC, padded, 4n),
      await signedMessage(attackerKey, PEERS_TOPIC, impersonating, 5n)
    ])
    await waitFor('four rejections', () => victim.gossip.stats.rejected - rejectedBefore >= 4, 10_000)
    assert.equal(delivered.length, 2, 'nothing malformed was delivered')
    const score = (): number => (victim.libp2p.services.pubsub as unknown as { getScore: (p: string) => number }).getScore(me)
    // Scores are cached for a short while; the penalty shows once the cache refreshes.
    await waitFor('the attacker score to drop', () => score() < INVALID_MESSAGE_WEIGHT * 4, 15_000).catch(() => {})
    assert.ok(score() < INVALID_MESSAGE_WEIGHT * 4, `attacker is penalised by peer scoring (score ${score()})`)
  })
})

describe('gossip validation: the ready topic (matchmaking) goes through the typed gossip layer', function () {
  this.timeout(120_000)
  let victim: PeerNode
  let attacker: Awaited<ReturnType<typeof rawAttacker>> | undefined
  let matchmaking: Matchmaking
  const job = 'ready-job'
  const topic = jobReadyTopic(job)

  before(async () => {
    victim = await startTestNode('peer')
    matchmaking = new Matchmaking({ gossip: victim.gossip, peerId: victim.peerId })
    matchmaking.join(job)
    attacker = await rawAttacker(victim)
  })

  after(async () => {
    matchmaking?.stop()
    await attacker?.node.stop()
    await victim?.stop()
  })

  it('a malformed ready message is rejected, never reaches matchmaking, and lowers its sender\'s score', async () => {
    const { key, node, sendRaw } = attacker!
    const me = node.peerId.toString()
    const ready = (round: number, over: Partial<ReadyAnnouncement> = {}): ReadyAnnouncement => ({ v: 1, type: 'allreduce-ready', job, round, attempt: 0, peerId: me, vectorLength: 10, codec: 'none', speedBps: 5, at: round, ...over })
    const rejectedBefore = victim.gossip.stats.rejected
    await sendRaw(topic, [
      await signedMessage(key, topic, encodeReadyMessage(ready(1, { vectorLength: -1 })), 1n), // wrong schema
      await signedMessage(key, topic, encodeReadyMessage(ready(2, { peerId: victim.peerId })), 2n), // speaks for another peer
      await signedMessage(key, topic, encodeReadyMessage(ready(3, { job: 'other-job' })), 3n), // belongs on another topic
      await signedMessage(key, topic, encodeReadyMessage({ v: 1, type: 'allreduce-group', job, round: 4, attempt: 0, peerId: me, members: [victim.peerId], at: 4 }), 4n) // a group without its author
    ])
    // A valid announcement afterwards proves the stream was processed, so the absence of the others is meaningful.
    await sendRaw(topic, [await signedMessage(key, topic, encodeReadyMessage(ready(5)), 5n)])
    await waitFor('the valid announcement', () => matchmaking.highestAttempt(job, 5) === 0, 10_000)
    assert.equal(victim.gossip.stats.rejected - rejectedBefore, 4, 'the four malformed messages were rejected by the typed gossip layer')
    for (const round of [1, 2, 3, 4]) assert.equal(matchmaking.highestAttempt(job, round), -1, `round ${round}'s message reached matchmaking`)
    const score = (): number => (victim.libp2p.services.pubsub as unknown as { getScore: (p: string) => number }).getScore(me)
    // Scores are cached for a short while; the penalty shows once the cache refreshes.
    await waitFor('the attacker score to drop', () => score() < INVALID_MESSAGE_WEIGHT * 4, 15_000).catch(() => {})
    assert.ok(score() < INVALID_MESSAGE_WEIGHT * 4, `attacker is penalised by peer scoring for the ready topic (score ${score()})`)
  })
})
