/**
 * The member's side of one part: open a stream to the part's reducer (or its stand-in), send the
 * `contribute` header, wait for `accept`, send the payload, half-close, then read `wait` heartbeats until
 * the `result` (or a `reject`).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Stream } from '@libp2p/interface'
import {
  ALLREDUCE_PROTOCOL, validateFrameHeader,
  type AcceptHeader, type ContributeHeader, type FrameHeader, type RejectHeader, type ResultHeader, type WaitHeader
} from '../../protocol/allreduce.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { sleep, TimeoutError, timeoutSignal } from '../time/clock.ts'
import { decodeResultInto } from './combine.ts'
import { StallTimer } from '../time/stall-timer.ts'
import { RejectedError, type ButterflyContext, type PartOutcome, type RoundSession } from './round-session.ts'
import { FrameReader, writeHeader, writePayload } from './wire.ts'

/** A dial that fails fast is tried again (briefly) before the peer is given up on. */
const DIAL_ATTEMPTS = 3
const DIAL_RETRY_MS = 100

/** Sends this peer's contribution to `part` to `to` and reads back the part's result. */
export async function contribute<T> (service: ButterflyContext, session: RoundSession<T>, to: string, part: number, standIn: boolean): Promise<PartOutcome> {
  const { clock, speeds } = service
  // Silence, not size, decides: the reducer sends heartbeats while it waits for the others, so a member
  // waits as long as bytes or heartbeats keep coming, up to the policy's ceiling.
  const ceiling = speeds.policy.ceilingMs
  const capped = timeoutSignal(ceiling, `part ${part} from ${to} took longer than ${ceiling} ms`, { clock, signal: session.opts.signal })
  const silence = new AbortController()
  const signal = AbortSignal.any([capped.signal, silence.signal])
  const stallMs = speeds.stallMs(to)
  // Until it accepts, the reducer may be waiting (bounded) for its own round to begin.
  // Bytes from the same peer on any stream (its contributions to our part) also show it is alive.
  const stall = new StallTimer(clock, stallMs + service.sessionWaitMs, (ms) => { silence.abort(new TimeoutError(`${to} silent for ${ms} ms on part ${part} (round ${session.stage})`)) }, () => session.lastProgress.get(to))
  const clear = (): void => { capped.clear(); stall.clear() }
  let stream: Stream | undefined
  const onAbort = (): void => { stream?.abort(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason))) }
  signal.addEventListener('abort', onAbort, { once: true })
  const started = performance.now()
  try {
    const payload = session.payload(part)
    stream = await dial(service, to, signal)
    const reader = new FrameReader(stream, () => { stall.touch() })
    const answerTo = <H extends FrameHeader>(types: Array<H['type']>) => (h: FrameHeader): H => {
      if (!(types as string[]).includes(h.type)) throw new InvalidMessageError(`unexpected ${h.type} frame from ${to}`)
      validateFrameHeader(h, session.ctx, to)
      if (h.part !== part) throw new InvalidMessageError(`answer for part ${h.part} from ${to}, asked for ${part}`)
      return h as H
    }
    // Handshake: the header first; the payload only once the reducer has taken it.
    const header: ContributeHeader = { ...session.frameBase(part), type: 'contribute', from: session.self, weight: session.opts.weight, standIn }
    const headerBytes = await writeHeader(stream, header, signal)
    const go = await reader.readFrame<AcceptHeader | RejectHeader>({ accept: answerTo<AcceptHeader | RejectHeader>(['accept', 'reject']), maxPayload: () => 0 })
    session.count(to, headerBytes, go.bytes)
    if (go.header.type === 'reject') throw new RejectedError(go.header.reason, go.header.message)
    stall.setWindow(stallMs)
    const sent = headerBytes + await writePayload(stream, payload, signal, () => { stall.touch() })
    session.count(to, sent - headerBytes, 0)
    await stream.close({ signal })
    let frame
    for (;;) {
      frame = await reader.readFrame<WaitHeader | ResultHeader | RejectHeader>({
        accept: answerTo<WaitHeader | ResultHeader | RejectHeader>(['wait', 'result', 'reject']),
        maxPayload: (h) => h.type === 'result' ? session.aggregator.maxResultBytes(session.partition.lengths[part]) : 0,
        // A result is decoded (copied) into its place at once; the buffer is reused once the round is over.
        alloc: (n) => { const b = service.pool.bytes(n); session.pooledResult(b); return b }
      })
      session.count(to, 0, frame.bytes)
      if (frame.header.type !== 'wait') break
    }
    if (frame.header.type === 'reject') throw new RejectedError(frame.header.reason, frame.header.message)
    // The whole exchange (upload, the reducer's wait for the others, download) as one sample: it can only
    // underestimate the reducer's speed, which errs towards waiting longer, never towards a false drop.
    speeds.observeTransfer(to, sent + frame.bytes, performance.now() - started)
    speeds.observeGap(to, stall.longestGap)
    // The payload must decode before the part is accepted from this member: decoded once, into its place in
    // the result (a later candidate or this peer's own values overwrite it if it does not).
    const values = session.resultSlot(part)
    decodeResultInto(session.aggregator, frame.payload, values)
    return { header: frame.header as ResultHeader, payload: frame.payload, values }
  } catch (err) {
    if (err instanceof InvalidMessageError) session.rejectedFrames++
    stream?.abort(err as Error)
    throw err
  } finally {
    clear()
    signal.removeEventListener('abort', onAbort)
  }
}

/** Opens a stream to `to`; a dial that fails fast is tried again (briefly) before the peer is given up on. */
async function dial (service: ButterflyContext, to: string, signal: AbortSignal): Promise<Stream> {
  const peer = peerIdFromString(to)
  for (let attempt = 1; ; attempt++) {
    const started = service.clock.now()
    try {
      const stream = await service.host.dialProtocol(peer, ALLREDUCE_PROTOCOL, { signal, runOnLimitedConnection: true })
      service.speeds.observeLatency(to, service.clock.now() - started)
      return stream
    } catch (err) {
      if (signal.aborted || attempt >= DIAL_ATTEMPTS) throw err
      await sleep(DIAL_RETRY_MS * attempt, { clock: service.clock, signal })
    }
  }
}
