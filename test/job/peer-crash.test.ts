/**
 * Must-show of fault tolerance: one of 4 peer processes is killed with SIGKILL while its round's all-reduce
 * is running. The other 3 complete that round (the dead peer's part of the vector is reduced by a stand-in)
 * and go on training; the killed peer restarts from its home (same PeerId), resumes from its last local state,
 * catches up with the network's newest checkpoint by CID, and trains again with the others. At the end all 4
 * hold the same weights.
 */
import assert from 'node:assert/strict'
import { startTestNetwork, type TestNetwork } from './network.ts'

describe('fault tolerance: a peer killed (SIGKILL) mid-round', function () {
  this.timeout(900_000)
  let net: TestNetwork
  after(async function () { await net?.stop(this.test?.parent?.tests.some(t => t.state === 'failed') === true) })

  it('the round completes with the other 3, training goes on, and the restarted peer rejoins from the latest state', async () => {
    net = await startTestNetwork({ peers: 4, job: { rounds: 14, checkpointEvery: 2, inner: { steps: 15, lr: 1e-3, weightDecay: 0.01, batchSize: 64 } } })
    for (let i = 0; i < 4; i++) net.start(i)
    const [a, b, c] = net.peers
    const victim = net.peers[3]
    const victimId = net.peerIds[3]

    // Kill the victim the moment it reports its all-reduce group for a round in which all 4 are members.
    const group = await victim.waitFor(l => l.event === 'group' && l.round >= 1 && (l.members as string[]).length === 4, 400_000, 'a full all-reduce group')
    victim.kill('SIGKILL')
    const killedRound = group.round as number
    assert.equal(await victim.exited, -1)

    // The round completes at the other three, with identical weights, without the victim's update counted whole.
    const outcomes = await Promise.all([a, b, c].map(async p => await p.waitFor(l => l.event === 'round' && l.round === killedRound, 120_000, `round ${killedRound}`)))
    assert.equal(new Set(outcomes.map(o => o.hash)).size, 1, 'survivors disagree on the round they finished without the victim')
    const o = outcomes[0]
    assert.ok((o.dropped as string[]).includes(victimId) || (o.contributions as Array<{ peer: string }>).every(x => x.peer !== victimId),
      `round ${killedRound}: victim neither dropped nor left out: ${JSON.stringify(o)}`)
    // Training goes on without it.
    await a.waitFor(l => l.event === 'round' && l.round === killedRound + 1 && l.peers === 3, 120_000, 'a round with the 3 survivors')

    // The victim restarts from its home: same PeerId, resumes its own last state, then catches up by CID.
    const restarted = net.start(3)
    const started = await restarted.waitFor(l => l.msg === 'node started', 120_000, 'node started')
    assert.equal(started.peerId, victimId)
    await restarted.waitFor(l => l.msg === 'resumed from the local state', 120_000, 'resume from local state')
    const adopted = await restarted.waitFor(l => l.msg === 'adopted the network state', 300_000, 'catch-up from the network')
    assert.ok(adopted.round > killedRound, `adopted round ${adopted.round} is not newer than the crash round ${killedRound}`)
    // ...and contributes again: a later round at a survivor credits the victim.
    const rejoined = await a.waitFor(l => l.event === 'round' && l.round > (adopted.round as number) && (l.contributions as Array<{ peer: string }>).some(x => x.peer === victimId), 300_000, 'a round with the restarted peer')
    assert.ok(rejoined.round < net.spec.rounds)

    const done = await Promise.all(net.peers.map(async p => await p.waitFor(l => l.event === 'job-done', 400_000, 'job-done')))
    const hashes = done.map(d => d.hash as string)
    assert.equal(new Set(hashes).size, 1, `final weights differ: ${hashes.join(', ')}`)
  })
})
