/**
 * The reducer's side of one part: an inbound `contribute` stream is checked against the round it names
 * (waiting, bounded and paused, for that round to begin here), accepted, read, handed to the part's
 * collector, kept alive with `wait` heartbeats, and answered with the part's result, or refused with a
 * `reject` frame that says why.
 */
import type { Connection, Stream } from '@libp2p/interface'
import {
  ALLREDUCE_WIRE_VERSION, encodeFrame, validateFrameHeader,
  type ContributeHeader, type FrameHeader, type RejectHeader, type RejectReason
} from '../../protocol/allreduce.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { TimeoutError } from '../time/clock.ts'
import type { WireContribution } from './combine.ts'
import { RejectedError, sessionKey, type ButterflyContext, type PartOutcome, type RoundSession } from './round-session.ts'
import type { SessionRegistry } from './session-registry.ts'
import { StallTimer } from '../time/stall-timer.ts'
import { FrameReader, writeFrame } from './wire.ts'

/** Serves one inbound stream of the all-reduce protocol. Never throws: a failure refuses or aborts the stream. */
export async function serveContribution (service: ButterflyContext, sessions: SessionRegistry, stream: Stream, connection: Connection): Promise<void> {
  service.stats.inboundStreams++
  const remote = connection.remotePeer.toString()
  let session: RoundSession<any> | undefined
  let header: ContributeHeader | undefined
  let stopHeartbeat = (): void => {}
  const reader = new FrameReader(stream, () => { session?.touch(remote) })
  try {
    const { header: h, bytes: headerBytes } = await reader.readHeader<ContributeHeader>(async (h) => {
      if (h.type !== 'contribute') throw new InvalidMessageError(`expected a contribute frame, got ${h.type}`)
      header = h
      const key = sessionKey(h.job, h.round, h.group)
      // A round running here with another group will not change its mind: refuse at once.
      const running = (): RoundSession<any> | undefined => sessions.runningWithOtherGroup(h.job, h.round, h.group)
      const waited = !sessions.has(key)
      // While it waits for the round to begin here, the stream is paused: what the sender pushes meanwhile
      // stays within the muxer's bounded buffers instead of piling up in memory.
      if (waited) stream.pause()
      session = running() == null ? await sessions.waitFor(key) : undefined
      if (waited && stream.readStatus === 'paused') stream.resume()
      if (session == null || session.stages.over) {
        const sameRound = running()
        if (sameRound != null) {
          // Our view of the round's group differs: count it against the round we are running.
          sameRound.rejectedFrames++
          service.stats.rejectedFrames++
          throw new RejectedError('group-mismatch', `round ${h.job}#${h.round} runs here with another group`)
        }
        throw new RejectedError('no-session', session == null ? `no round ${h.job}#${h.round} with this group here` : `round ${h.job}#${h.round} is over here (${session.stage})`)
      }
      validateFrameHeader(h, session.ctx, remote)
      if (service.excluded.has(remote)) throw new RejectedError('excluded', `${remote} was caught lying about a part's result and is excluded`)
      return h
    })
    const s = session!
    const accepted = await writeFrame(stream, { ...s.frameBase(h.part), type: 'accept' }, new Uint8Array(0))
    // Heartbeats from the go-ahead until the result: while the payload arrives and while the part is
    // collected, the member can tell a reducer that waits from one that has stalled.
    const beatEvery = Math.max(50, Math.floor(service.speeds.stallMs(remote) / 3))
    const wait = encodeFrame({ ...s.frameBase(h.part), type: 'wait' }, new Uint8Array(0))
    let beat: unknown
    const heartbeat = (): void => {
      if (stream.writeStatus !== 'writable') return
      try { stream.send(wait); s.count(remote, wait.byteLength, 0) } catch { return }
      beat = service.clock.setTimeout(heartbeat, beatEvery)
    }
    beat = service.clock.setTimeout(heartbeat, beatEvery)
    stopHeartbeat = () => { service.clock.clearTimeout(beat) }
    const acceptedAt = performance.now()
    const pooled = s.aggregator.decodeCopies === true
    const payload = await reader.readPayload(s.aggregator.maxContributionBytes(h.elements), 'all-reduce contribute payload', pooled ? (n) => service.pool.bytes(n) : undefined)
    s.count(remote, accepted, headerBytes + 4 + payload.byteLength)
    // From our go-ahead to the last byte, a round trip included: it errs on the slow side.
    service.speeds.observeTransfer(remote, payload.byteLength, performance.now() - acceptedAt)
    let value: unknown
    try {
      // What this peer lists as combined for the sender: an auditor recomputes the part from exactly these bytes.
      if (service.auditing) s.audit.noteInput(h.part, remote, payload)
      value = s.decodeContribution(h.part, payload)
    } catch (err) {
      // The update checks' shape check: the sender is named as rejected for the part instead of waited for.
      if (err instanceof InvalidMessageError) s.collectors.get(h.part)?.refuse(remote, err.message)
      throw err
    } finally {
      // Read in full, digested and decoded into memory of its own: nothing refers to the payload any more.
      if (pooled) service.pool.release(payload)
    }
    const contribution: WireContribution<unknown> = { peer: remote, weight: h.weight, value }
    await reader.expectEnd()
    const collector = s.collectors.get(h.part)
    if (collector != null) {
      collector.add(contribution)
    } else if (h.part !== s.selfIndex) {
      // Asked to stand in before this peer found out the reducer failed: keep it for when (if) it does.
      const pending = s.pendingStandIn.get(h.part) ?? new Map()
      if (!pending.has(remote)) pending.set(remote, contribution)
      s.pendingStandIn.set(h.part, pending)
    }
    let outcome: PartOutcome
    try {
      outcome = await s.outcomes[h.part].promise
    } finally {
      stopHeartbeat()
    }
    if (outcome.localOnly === true) {
      throw new RejectedError('unavailable', `part ${h.part} could not be reduced (round ${s.stage})`)
    }
    const answering = answer(service, s, stream, remote, outcome)
    s.answering.add(answering)
    try { await answering } finally { s.answering.delete(answering) }
  } catch (err) {
    stopHeartbeat()
    let reason: RejectReason | null = null
    if (err instanceof RejectedError) reason = err.reason
    else if (err instanceof InvalidMessageError) {
      reason = (err.details as { reason?: RejectReason } | undefined)?.reason ?? 'invalid'
      service.stats.rejectedFrames++
      if (session != null) session.rejectedFrames++
    }
    service.log({ remote, stage: session?.stage, err: (err as Error).message }, 'all-reduce: inbound stream refused')
    if (reason != null && header != null && stream.writeStatus === 'writable') {
      try {
        const reject: RejectHeader = {
          v: ALLREDUCE_WIRE_VERSION, job: header.job, round: header.round, group: header.group, part: header.part,
          offset: header.offset, elements: header.elements, type: 'reject', reason, message: (err as Error).message.slice(0, 512)
        }
        await writeFrame(stream, reject as FrameHeader, new Uint8Array(0))
        await stream.close()
        return
      } catch { /* fall through to abort */ }
    }
    stream.abort(err as Error)
  }
}

/** Writes a part's result to a member, within a timeout derived from that member's measured speed. */
async function answer (service: ButterflyContext, s: RoundSession<any>, stream: Stream, remote: string, outcome: PartOutcome): Promise<void> {
  const controller = new AbortController()
  const stall = new StallTimer(service.clock, service.speeds.stallMs(remote), (ms) => {
    controller.abort(new TimeoutError(`${remote} took no bytes of part ${outcome.header.part}'s result for ${ms} ms`))
  })
  try {
    s.sending(outcome.payload)
    // Test-only: a lying reducer sends every member the same wrong result for a part it reduced itself.
    const lie = outcome.header.reducer === s.self ? service.corruptResult : undefined
    const payload = lie?.(outcome.header.part, outcome.payload) ?? outcome.payload
    const sent = await writeFrame(stream, outcome.header, payload, controller.signal, () => { stall.touch() })
    s.count(remote, sent, 0)
    await stream.close({ signal: controller.signal })
  } finally {
    stall.clear()
  }
}
