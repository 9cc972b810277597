import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { PeerNode } from '../../node/network/peer-node.ts'
import { pino } from 'pino'
import { silentLogger } from '../../node/log/logger.ts'
import { buildModel } from '../../node/training/models.ts'
import { parseModelSpec } from '../../node/training/model-spec.ts'
import { weightsHash } from '../../node/training/outer-optimizer.ts'
import type { GlobalState } from '../../node/round/steps.ts'
import { NetworkState, type AnchoredState, type NetworkStateOptions } from '../../node/job/network-state.ts'
import { JobMembership } from '../../node/job/membership.ts'
import { loadState, publishState } from '../../node/job/state-snapshot.ts'
import { jobRoundsTopic } from '../../protocol/topics.ts'
import { startTestNode, waitFor } from '../helpers/network.ts'

const SPEC = parseModelSpec({ kind: 'mlp', inputs: 8, hidden: [4], classes: 3 })
const SIZE = 8 * 4 + 4 + 4 * 3 + 3

const bits = (v: Float32Array): Uint8Array => new Uint8Array(v.buffer, v.byteOffset, v.byteLength)

function stateOf (round: number, salt: number): GlobalState {
  const weights = new Float32Array(SIZE).map((_, i) => Math.sin(i + salt * 101) / 3)
  const momentum = new Float32Array(SIZE).map((_, i) => Math.cos(i * salt) / 7)
  return { round, weights, momentum }
}

const testLogger = (): ReturnType<typeof silentLogger> => process.env.NEARAI_TEST_LOG != null ? pino({ level: process.env.NEARAI_TEST_LOG }) : silentLogger()

interface Adoption { state: GlobalState, cid: string, weightsSha256: string }

describe('job: round announcements and catching up (NetworkState)', function () {
  this.timeout(60_000)
  let nodes: PeerNode[] = []
  let model: tf.LayersModel
  const started: NetworkState[] = []
  let jobCounter = 0

  before(async () => {
    await tf.setBackend('cpu')
    model = buildModel(SPEC, 1)
    const a = await startTestNode('peer')
    const b = await startTestNode('peer', { bootstrap: [a.multiaddrs[0]] })
    const c = await startTestNode('peer', { bootstrap: [a.multiaddrs[0]] })
    await c.libp2p.dial(multiaddr(b.multiaddrs[0]))
    nodes = [a, b, c]
    await waitFor('all three nodes connected to each other', () => nodes.every(n => n.connectedPeers().length >= 2), 20_000)
  })

  afterEach(() => { for (const s of started.splice(0)) s.stop() })

  after(async () => {
    model?.dispose()
    await Promise.all(nodes.map(async n => await n.stop()))
  })

  /** One NetworkState per node on a fresh job (its own topic), once every node sees the others subscribed. */
  async function join (opts: { fetchTimeoutMs?: number, members?: string[], anchors?: NetworkStateOptions['anchors'] } = {}): Promise<{ job: string, states: NetworkState[], adopted: Adoption[][] }> {
    const job = `ns-test-${++jobCounter}`
    const adopted: Adoption[][] = nodes.map(() => [])
    // Every node took part in the round it holds (the job's founders): each other node's announcement is a quorum
    // of one (3 members, f = 0; the round-trust rule's own tests are in round-trust.test.ts).
    const ids = opts.members ?? nodes.map(n => n.peerId)
    const states = nodes.map((node, i) => new NetworkState({
      job,
      anchors: opts.anchors,
      membership: (() => { const m = new JobMembership(job, 100); m.hold(-1, undefined, ids); return m })(),
      gossip: node.gossip,
      helia: node.helia,
      peerId: node.peerId,
      modelSize: SIZE,
      logger: testLogger(),
      fetchTimeoutMs: opts.fetchTimeoutMs ?? 15_000,
      onAdopt: async (state, cid, weightsSha256) => { adopted[i].push({ state, cid, weightsSha256 }) }
    }))
    for (const s of states) { s.start(); started.push(s) }
    const topic = jobRoundsTopic(job)
    await waitFor('subscriptions to the job topic to propagate', () => nodes.every(n => n.libp2p.services.pubsub.getSubscribers(topic).length === nodes.length - 1), 20_000)
    return { job, states, adopted }
  }

  /** The round's contributions as an honest announcer lists them: all three nodes. */
  function everyone (): Array<{ peer: string, samples: number }> {
    return nodes.map(n => ({ peer: n.peerId, samples: 10 }))
  }

  async function publish (i: number, job: string, state: GlobalState): Promise<{ cid: string, weightsSha256: string }> {
    const published = await publishState(nodes[i].helia, model, state, { job, provide: false })
    return { cid: published.cid.toString(), weightsSha256: published.weightsSha256 }
  }

  it('delivers an announcement to the other peers, where newest() reports it', async () => {
    const { job, states } = await join()
    const { cid, weightsSha256 } = await publish(0, job, stateOf(2, 1))
    const recipients = await states[0].announce(2, weightsSha256, cid, [{ peer: nodes[0].peerId, samples: 10 }])
    assert.equal(recipients, 2, 'sent to both subscribed peers')
    for (const s of states.slice(1)) await waitFor('the announcement', () => s.newest()?.round === 2, 10_000)
    for (const s of states.slice(1)) assert.deepEqual({ ...s.newest(), vouchers: undefined }, { round: 2, weightsSha256, cid, vouchers: undefined, contributors: [nodes[0].peerId] })
    for (const s of states.slice(1)) assert.deepEqual(s.newest()?.vouchers, [nodes[0].peerId])
  })

  it('waitForNewer resolves as soon as a newer round is announced, and with false after its timeout', async () => {
    const { states } = await join()
    // Nobody fetches it here: an announcement names a CID to be able to vouch for a state at all.
    const someCid = CID.create(1, raw.code, await sha256.digest(new TextEncoder().encode('round 1')))
    let t = Date.now()
    assert.equal(await states[1].waitForNewer(0, 300), false)
    assert.ok(Date.now() - t >= 250, 'waited out the timeout')

    t = Date.now()
    const waiting = states[1].waitForNewer(0, 20_000)
    setTimeout(() => { void states[0].announce(1, weightsHash(stateOf(1, 2).weights), someCid.toString(), everyone()) }, 200)
    assert.equal(await waiting, true)
    assert.ok(Date.now() - t < 10_000, `resolved on the announcement, not the 20 s timeout (${Date.now() - t} ms)`)
    assert.equal(await states[1].waitForNewer(0, 20_000), true, 'already newer: resolves at once')
    assert.equal(await states[1].waitForNewer(1, 100), false, 'round 1 is not newer than round 1')
  })

  it('catchUp adopts the newest announced round, fetched by CID and verified by hash', async () => {
    const { job, states, adopted } = await join()
    const ahead = stateOf(3, 3)
    const { cid, weightsSha256 } = await publish(0, job, ahead)
    await states[0].announce(3, weightsSha256, cid, everyone())
    await waitFor('the announcement', () => states[1].newest()?.round === 3, 10_000)

    const behind = stateOf(-1, 4)
    const next = await states[1].catchUp(behind, new AbortController().signal)
    assert.equal(next.round, 3)
    assert.deepEqual(bits(next.weights), bits(ahead.weights))
    assert.deepEqual(bits(next.momentum), bits(ahead.momentum))
    assert.equal(adopted[1].length, 1)
    assert.equal(adopted[1][0].cid, cid)
    assert.equal(adopted[1][0].weightsSha256, weightsSha256)
    assert.equal(adopted[1][0].state, next)
  })

  it('catchUp ignores announcements older than the current state', async () => {
    const { job, states, adopted } = await join()
    const { cid, weightsSha256 } = await publish(0, job, stateOf(3, 5))
    await states[0].announce(3, weightsSha256, cid, everyone())
    await waitFor('the announcement', () => states[1].newest()?.round === 3, 10_000)
    const current = stateOf(5, 6)
    assert.equal(await states[1].catchUp(current, new AbortController().signal), current)
    assert.equal(adopted[1].length, 0)
  })

  it('catchUp keeps the state when the round\'s majority hash is ours, and adopts the majority\'s when ours is a fork', async () => {
    const { job, states, adopted } = await join()
    const agreed = stateOf(4, 7)
    const forked = stateOf(4, 8)
    const a = await publish(0, job, agreed)
    const b = await publish(1, job, agreed)
    const c = await publish(2, job, forked)
    assert.notEqual(c.weightsSha256, a.weightsSha256)
    await states[0].announce(4, a.weightsSha256, a.cid, everyone())
    await states[1].announce(4, b.weightsSha256, b.cid, everyone())
    await states[2].announce(4, c.weightsSha256, c.cid, everyone())
    await waitFor('node 2 to see the two agreeing announcements', () => states[2].newest({ round: 4, weightsSha256: c.weightsSha256, members: new Set(nodes.map(n => n.peerId)) })?.vouchers.length === 2, 10_000)
    const heardFrom = (i: number): boolean => states[0].newest({ round: 3, members: new Set([nodes[0].peerId, nodes[i].peerId]) })?.round === 4
    await waitFor('node 0 to hear nodes 1 and 2', () => heardFrom(1) && heardFrom(2), 10_000)

    const mine = { ...agreed }
    assert.equal(await states[0].catchUp(mine, new AbortController().signal), mine, 'a peer in the majority keeps its state')
    assert.equal(adopted[0].length, 0)

    const fork = { ...forked }
    const next = await states[2].catchUp(fork, new AbortController().signal)
    assert.notEqual(next, fork)
    assert.equal(next.round, 4)
    assert.deepEqual(bits(next.weights), bits(agreed.weights))
    assert.equal(adopted[2].length, 1)
    assert.equal(adopted[2][0].weightsSha256, a.weightsSha256)
    assert.ok([a.cid, b.cid].includes(adopted[2][0].cid))
  })

  it('catchUp returns the current state when the announced CID cannot be fetched', async () => {
    const { states, adopted } = await join({ fetchTimeoutMs: 1_500 })
    const nowhere = CID.create(1, raw.code, await sha256.digest(new TextEncoder().encode(`nobody holds this ${Date.now()}`)))
    await states[0].announce(6, weightsHash(stateOf(6, 9).weights), nowhere.toString(), everyone())
    await waitFor('the announcement', () => states[1].newest()?.round === 6, 10_000)
    const current = stateOf(2, 10)
    const t = Date.now()
    assert.equal(await states[1].catchUp(current, new AbortController().signal), current)
    assert.ok(Date.now() - t < 10_000, 'gave up after the fetch timeout')
    assert.equal(adopted[1].length, 0)
  })

  it('catchUp returns the current state when the fetched content does not have the announced hash', async () => {
    const { job, states, adopted } = await join()
    const real = stateOf(8, 11)
    const { cid, weightsSha256 } = await publish(0, job, real)
    await states[0].announce(8, weightsHash(stateOf(8, 12).weights), cid, everyone())
    await waitFor('the announcement', () => states[1].newest()?.round === 8, 10_000)
    const current = stateOf(7, 13)
    assert.equal(await states[1].catchUp(current, new AbortController().signal), current)
    assert.equal(adopted[1].length, 0)

    // Control: the content itself is fine and reachable; only the announced hash was wrong.
    const direct = await loadState(nodes[2].helia, CID.parse(cid), { size: SIZE, expectedWeightsSha256: weightsSha256, timeoutMs: 15_000 })
    assert.deepEqual(bits(direct.weights), bits(real.weights))
  })

  it('catchUp does not adopt a state whose own round differs from the announced round', async () => {
    const { job, states, adopted } = await join()
    const real = stateOf(8, 14)
    const { cid, weightsSha256 } = await publish(0, job, real)
    await states[0].announce(9, weightsSha256, cid, everyone())
    await waitFor('the announcement', () => states[1].newest()?.round === 9, 10_000)
    const current = stateOf(7, 15)
    assert.equal(await states[1].catchUp(current, new AbortController().signal), current)
    assert.equal(adopted[1].length, 0)
  })

  it('a state announced only by a peer outside the held round\'s participants is never adopted, nor ends a wait', async () => {
    const members = [nodes[0].peerId, nodes[1].peerId]
    const { job, states, adopted } = await join({ members })
    const forged = stateOf(5, 16)
    const { cid, weightsSha256 } = await publish(2, job, forged)
    await states[2].announce(5, weightsSha256, cid, everyone())
    const current = stateOf(3, 17)
    assert.equal(await states[1].waitForNewer(3, 1_500), false, 'one outsider does not end the wait')
    assert.equal(await states[1].catchUp(current, new AbortController().signal), current)
    assert.equal(adopted[1].length, 0)
    // The same state announced by a participant of the held round is adopted.
    await states[0].announce(5, weightsSha256, cid, everyone())
    await waitFor('the participant\'s announcement', () => states[1].newest()?.round === 5, 10_000)
    const next = await states[1].catchUp(current, new AbortController().signal)
    assert.equal(next.round, 5)
    assert.deepEqual(bits(next.weights), bits(forged.weights))
  })

  it('a state anchored on chain is adopted without announcements', async () => {
    let anchor: AnchoredState | undefined
    const { job, states, adopted } = await join({ anchors: async () => anchor })
    const anchoredState = stateOf(6, 18)
    const { cid, weightsSha256 } = await publish(0, job, anchoredState)
    const current = stateOf(2, 19)
    assert.equal(await states[1].catchUp(current, new AbortController().signal), current, 'no anchor yet')
    anchor = { round: 6, weightsSha256, cid }
    const next = await states[1].catchUp(current, new AbortController().signal)
    assert.equal(next.round, 6)
    assert.deepEqual(bits(next.weights), bits(anchoredState.weights))
    assert.equal(adopted[1][0].weightsSha256, weightsSha256)
    // An anchor whose content does not hash as anchored is not adopted.
    anchor = { round: 7, weightsSha256: weightsHash(stateOf(7, 20).weights), cid }
    assert.equal(await states[2].catchUp(current, new AbortController().signal), current)
  })
})
