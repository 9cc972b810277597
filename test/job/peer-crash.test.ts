/**
 * Must-show of fault tolerance: one of 4 peer processes is killed with SIGKILL while its round's all-reduce
 * is running (before it reduces its own part). The other 3 complete that round (the dead peer's part of the vector is reduced by a stand-in,
 * and every part of the result is the weighted mean of exactly the contributions its reducer reports) and go
 * on training; the killed peer restarts from its home (same PeerId), resumes from its last local state,
 * catches up with the network's newest checkpoint by CID, and trains again with the others. At the end all 4
 * hold the same weights.
 *
 * The survivors record each exchange (NEARAI_DEBUG_EXCHANGE_DIR: what they sent, decoded as a reducer decodes
 * it, the average, each part's reducer and contributors), and the test recomputes the weighted means itself.
 */
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { codecFor } from '../../node/compression/index.ts'
import { EXCHANGE_DIR_ENV } from '../../node/round/exchange-recorder.ts'
import { startTestNetwork, type TestNetwork } from './network.ts'

interface RecordedExchange {
  peer: string
  weight: number
  parts: Array<{ index: number, offset: number, elements: number, reducer: string, reducedBy: string | null, standIn: boolean, contributors: Array<{ peer: string, weight: number }>, localOnly: boolean }>
  sent: Float32Array
  average: Float32Array
}

/** The exchange a peer recorded for `round`: its last try, the one whose average it accepted. */
async function recordedExchange (dir: string, round: number): Promise<RecordedExchange> {
  const tries = (await readdir(dir)).map(f => new RegExp(`^round-${round}-try-(\\d+)\\.json$`).exec(f)).filter(m => m != null).map(m => Number(m[1]))
  assert.ok(tries.length > 0, `no exchange of round ${round} recorded in ${dir}`)
  const base = join(dir, `round-${round}-try-${Math.max(...tries)}`)
  const floats = async (file: string): Promise<Float32Array> => { const b = await readFile(file); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) }
  return { ...JSON.parse(await readFile(`${base}.json`, 'utf8')), sent: await floats(`${base}.sent.f32`), average: await floats(`${base}.average.f32`) }
}

describe('fault tolerance: a peer killed (SIGKILL) mid-round', function () {
  this.timeout(900_000)
  let net: TestNetwork
  after(async function () { await net?.stop(this.test?.parent?.tests.some(t => t.state === 'failed') === true) })

  it('the round completes with the other 3, training goes on, and the restarted peer rejoins from the latest state', async () => {
    net = await startTestNetwork({ peers: 4, job: { rounds: 14, checkpointEvery: 2, inner: { steps: 15, lr: 1e-3, weightDecay: 0.01, batchSize: 64 } } })
    const exchangeDir = (i: number): string => join(net.homes[i], 'exchange')
    // The victim dies (SIGKILL, by its own failpoint: node/faults/failpoints.ts) in a round from 1 on whose group has
    // all 4 members, once the others' contributions to its part are in and before it reduces it. A kill from this
    // process races the all-reduce, which can be over (the victim's part reduced by the victim) before the signal
    // lands; dying as the group forms can race the group's confirmation (the others may then form a group of 3).
    for (let i = 0; i < 4; i++) net.start(i, [], { [EXCHANGE_DIR_ENV]: exchangeDir(i), ...(i === 3 ? { NEARAI_CRASH_BEFORE_RESULT: '1:4' } : {}) })
    const [a, b, c] = net.peers
    const victim = net.peers[3]
    const victimId = net.peerIds[3]

    const crash = await victim.waitFor(l => l.event === 'failpoint', 400_000, 'the victim\'s crash in a full all-reduce group')
    const killedRound = crash.round as number
    assert.equal(crash.members, 4)
    assert.equal(await victim.exited, -1)

    // The round completes at the other three, with identical weights, without the victim's update counted whole.
    const outcomes = await Promise.all([a, b, c].map(async p => await p.waitFor(l => l.event === 'round' && l.round === killedRound, 120_000, `round ${killedRound}`)))
    assert.equal(new Set(outcomes.map(o => o.hash)).size, 1, 'survivors disagree on the round they finished without the victim')
    const o = outcomes[0]
    assert.ok((o.dropped as string[]).includes(victimId) || (o.contributions as Array<{ peer: string }>).every(x => x.peer !== victimId),
      `round ${killedRound}: victim neither dropped nor left out: ${JSON.stringify(o)}`)

    // The victim's part was reduced by a stand-in, at every survivor.
    for (const out of outcomes) {
      const standIns = out.standIns as Array<{ part: number, failed: string, standIn: string }>
      assert.ok(standIns.some(x => x.failed === victimId && x.standIn !== victimId), `round ${killedRound}: no stand-in reduced the victim's part: ${JSON.stringify(standIns)}`)
    }
    // Every part of the result is the weighted mean (float64, canonical peer order, rounded to float32, then
    // through the job's fp16 codec as the reducer sends it) of the contributions its reducer reports, as the
    // survivors recorded sending them; the part the stand-in reduced holds exactly the three survivors.
    const survivors = [0, 1, 2]
    const recorded = await Promise.all(survivors.map(async i => await recordedExchange(exchangeDir(i), killedRound)))
    const sentBy = new Map(recorded.map((r, k) => [net.peerIds[survivors[k]], r]))
    const codec = codecFor(net.spec.codec)
    const parts = recorded[0].parts
    for (const r of recorded.slice(1)) assert.deepEqual(r.parts.map(p => [p.reducedBy, p.contributors]), parts.map(p => [p.reducedBy, p.contributors]), 'survivors disagree on who reduced what')
    const victimPart = parts.find(p => p.reducer === victimId)
    assert.ok(victimPart != null && victimPart.standIn && victimPart.reducedBy !== victimId, `the victim's part: ${JSON.stringify(victimPart)}`)
    assert.deepEqual(victimPart.contributors.map(c => c.peer).sort(), [...sentBy.keys()].sort(), 'the stand-in reduced the survivors\' contributions, and only those')
    let checked = 0
    for (const part of parts) {
      // A contribution the victim sent before it died may be in a part reduced by a survivor: that part has no
      // recorded victim update to recompute it from, and is left to the hash agreement above.
      if (part.contributors.some(c => !sentBy.has(c.peer))) continue
      const mean = new Float32Array(part.elements)
      const acc = new Float64Array(part.elements)
      let total = 0
      for (const c of [...part.contributors].sort((a, b) => a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0)) {
        assert.equal(c.weight, sentBy.get(c.peer)!.weight, `${c.peer}'s weight as the reducer reports it`)
        if (c.weight === 0) continue
        total += c.weight
        const sent = sentBy.get(c.peer)!.sent
        for (let j = 0; j < part.elements; j++) acc[j] += c.weight * sent[part.offset + j]
      }
      for (let j = 0; j < part.elements; j++) mean[j] = acc[j] / total
      const expected = codec.decode(codec.encode(mean))
      for (const r of recorded) {
        const got = r.average.subarray(part.offset, part.offset + part.elements)
        const differs = got.findIndex((v, j) => v !== expected[j])
        assert.equal(differs, -1, `part ${part.index} at ${r.peer}: value ${differs} is ${got[differs]}, the weighted mean of its contributors is ${expected[differs]}`)
      }
      checked++
    }
    assert.ok(checked >= 1, 'no part could be recomputed')
    console.log(`      round ${killedRound}: ${checked} of ${parts.length} parts recomputed bit for bit from the survivors' recorded contributions; the victim's part ${victimPart.index} reduced by stand-in ${victimPart.reducedBy?.slice(-6)}`)

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
