/**
 * Fuzzing every gossip topic's handler: the parser (`protocol/gossip.ts`, `protocol/allreduce.ts` for the
 * ready topic) and the topic validator and delivery of the typed gossip layer (`node/network/gossip.ts`)
 * that every node installs on the topics it joins. A message either parses to a value that speaks for its
 * signed author on the right topic, or is refused with an InvalidMessageError; the validator answers
 * Accept or Reject and never throws; a rejected message never reaches a handler.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { pino } from 'pino'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { TypedGossip } from '../../node/network/gossip.ts'
import { encodeGossip, MAX_GOSSIP_MESSAGE_BYTES, parseGossip, type GossipMessage } from '../../protocol/gossip.ts'
import { jobReadyTopic, MAX_READY_MESSAGE_BYTES, MAX_ROUND_SAMPLES } from '../../protocol/allreduce.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { jobRoundsTopic, PEERS_TOPIC } from '../../protocol/topics.ts'
import { fuzzTimeout, hostileJson, parsesOrRefuses, runs } from './fuzz.ts'

const JOB = 'fuzz-job'
const SHA = 'ab'.repeat(32)
const CID = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'

/** A gossipsub with only what TypedGossip touches: the validators it installs and the message event. */
class FakePubsub extends EventTarget {
  readonly topicValidators = new Map<string, (peer: PeerId, msg: any) => TopicValidatorResult | Promise<TopicValidatorResult>>()
  subscribe (): void {}
  unsubscribe (): void {}
  async publish (): Promise<{ recipients: [] }> { return { recipients: [] } }
}

describe('fuzz: gossip topics', function () {
  this.timeout(fuzzTimeout(120_000))
  let author: PeerId
  let other: PeerId
  let valid: Record<string, Record<string, unknown>>
  const topics = { peers: PEERS_TOPIC, rounds: jobRoundsTopic(JOB), ready: jobReadyTopic(JOB) }

  before(async () => {
    author = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const me = author.toString()
    valid = {
      peers: { v: 1, type: 'peer-announce', peerId: me, roles: ['peer'], jobs: [JOB], backend: 'wasm', addrs: ['/ip4/127.0.0.1/tcp/4001'], at: 1 },
      rounds: { v: 1, type: 'round-result', job: JOB, round: 3, peerId: me, weightsSha256: SHA, checkpointCid: CID, contributions: [{ peer: me, samples: 640 }], at: 2 },
      ready: { v: 1, type: 'allreduce-ready', job: JOB, round: 3, attempt: 0, peerId: me, vectorLength: 1000, codec: 'fp16', speedBps: 1e6, at: 3 },
      group: { v: 1, type: 'allreduce-group', job: JOB, round: 3, attempt: 0, peerId: me, members: [me, other.toString()].sort(), at: 4 }
    }
    for (const [name, message] of Object.entries(valid)) {
      const topic = name === 'group' ? topics.ready : topics[name as keyof typeof topics]
      assert.ok(parseGossip(topic, encodeGossip(message as GossipMessage), me), `the valid ${name} message parses`)
    }
  })

  /** What every parsed message must satisfy: it speaks for its author, on its own topic, within its bounds. */
  function checkParsed (topic: string, message: GossipMessage, from: string): void {
    assert.equal(message.peerId, from)
    if ('job' in message) assert.equal(message.job, JOB)
    if (topic === topics.peers) assert.equal(message.type, 'peer-announce')
    if (topic === topics.rounds) assert.equal(message.type, 'round-result')
    if (topic === topics.ready) assert.ok(message.type === 'allreduce-ready' || message.type === 'allreduce-group')
    if (message.type === 'round-result') {
      for (const c of message.contributions) assert.ok(Number.isSafeInteger(c.samples) && c.samples >= 0 && c.samples <= MAX_ROUND_SAMPLES)
      assert.ok(Number.isSafeInteger(message.round) && message.round >= 0)
    }
    if (message.type === 'allreduce-ready') assert.ok(Number.isFinite(message.speedBps) && message.speedBps > 0)
    if ('at' in message) assert.ok(Number.isSafeInteger(message.at) && message.at >= 0)
  }

  for (const name of ['peers', 'rounds', 'ready', 'group'] as const) {
    it(`the ${name} message: malformed, truncated, extreme and oversized variants parse to a valid message or are refused by name`, () => {
      const topic = name === 'group' ? topics.ready : topics[name]
      const bound = name === 'ready' || name === 'group' ? MAX_READY_MESSAGE_BYTES : MAX_GOSSIP_MESSAGE_BYTES
      fc.assert(fc.property(hostileJson(valid[name], { oversize: bound }), (data) => {
        const message = parsesOrRefuses(() => parseGossip(topic, data, author.toString()), [InvalidMessageError], new TextDecoder().decode(data))
        if (message != null) checkParsed(topic, message, author.toString())
      }), runs())
    })
  }

  it('a valid message on the wrong topic, from another author, or on an unknown topic is refused', () => {
    const anyTopic = fc.oneof(fc.constantFrom(...Object.values(topics)), fc.constant('/nearai/job/other/rounds/1'), fc.constant('/nearai/job/x/ready/2'), fc.string({ maxLength: 40 }))
    fc.assert(fc.property(fc.constantFrom(...Object.keys(valid)), anyTopic, fc.boolean(), (name, topic, impostor) => {
      const from = impostor ? other.toString() : author.toString()
      const message = parsesOrRefuses(() => parseGossip(topic, encodeGossip(valid[name] as GossipMessage), from), [InvalidMessageError])
      if (message != null) {
        assert.equal(impostor, false, 'a message is only accepted from its own author')
        checkParsed(topic, message, from)
      }
    }), runs())
  })

  it('the topic validator of the typed gossip layer answers Accept or Reject, never throws, and delivers only what it accepts (replays included)', async () => {
    const pubsub = new FakePubsub()
    const gossip = new TypedGossip(pubsub as never, pino({ level: 'silent' }))
    const delivered: Array<{ topic: string, message: GossipMessage }> = []
    for (const topic of Object.values(topics)) gossip.subscribe(topic, (message) => { delivered.push({ topic, message }) })
    const hostile = fc.oneof(...Object.entries(valid).map(([name, v]) => hostileJson(v, { oversize: MAX_GOSSIP_MESSAGE_BYTES }).map(data => ({ name, data }))))
    let accepted = 0
    let rejected = 0
    await fc.assert(fc.asyncProperty(hostile, fc.boolean(), fc.boolean(), async ({ name, data }, signed, replay) => {
      const topic = name === 'group' ? topics.ready : topics[name as keyof typeof topics]
      const msg = signed
        ? { type: 'signed', topic, data, from: author, sequenceNumber: 1n, signature: new Uint8Array(64), key: author.publicKey }
        : { type: 'unsigned', topic, data }
      const validator = pubsub.topicValidators.get(topic)
      assert.ok(validator != null)
      const before = delivered.length
      for (let i = 0; i < (replay ? 2 : 1); i++) {
        const verdict = await validator(author, msg)
        assert.ok(verdict === TopicValidatorResult.Accept || verdict === TopicValidatorResult.Reject)
        // gossipsub emits 'message' only for accepted messages; the layer parses again and must agree.
        if (verdict === TopicValidatorResult.Accept) {
          accepted++
          assert.equal(signed, true, 'an unsigned message is never accepted')
          pubsub.dispatchEvent(new CustomEvent('message', { detail: msg }))
        } else {
          rejected++
        }
      }
      const got = delivered.slice(before)
      for (const d of got) checkParsed(d.topic, d.message, author.toString())
    }), runs())
    assert.equal(gossip.stats.rejected, rejected)
    assert.equal(gossip.stats.received, accepted)
    assert.equal(delivered.length, accepted)
  })
})
