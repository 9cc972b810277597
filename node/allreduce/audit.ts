/**
 * Reducer audits: a reducer may lie about its part's result. After every result is in, each part has one
 * auditor, a member a group-dependent number of places after the part's reducer in ring order (see
 * {@link auditorOf}). The auditor recomputes the part with
 * probability `rate` (a private coin: the reducer cannot know, when it sends its result, whether it will be
 * checked), fetching every listed contributor's payload for the part from the contributor itself, checking it
 * against the SHA-256 digest the reducer listed, and reducing them as the reducer should have (combine rules
 * are deterministic: the result is bit-identical). Audited or not, the auditor then sends every member a
 * verdict: the digest of the result it holds (the recomputed one after a lie). A member whose own copy has
 * another digest trusts nobody's word: it recomputes the part itself, keeps its copy if that is right, and
 * otherwise uses the recomputed result and reports the reducer. So a reducer that lies to everyone is caught
 * by every honest member at once when its part is recomputed, and one that sends different results to
 * different members is caught whenever a copy differs from the auditor's.
 *
 * Each member checks its own entry in every reducer's listing too: a reducer that lists this peer's
 * contribution with another digest or weight than it sent is reported.
 *
 * Streams on ALLREDUCE_AUDIT_PROTOCOL carry one exchange each: `audit-fetch` → `audit-payload` (or `reject`),
 * or a one-way `verdict`.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  ALLREDUCE_AUDIT_PROTOCOL, ALLREDUCE_WIRE_VERSION, validateFrameHeader,
  type AuditFetchHeader, type AuditPayloadHeader, type FrameHeader, type RejectHeader, type RejectReason, type ResultHeader, type VerdictHeader
} from '../../protocol/allreduce.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { timeoutSignal } from '../time/clock.ts'
import type { AuditReport, ReducerFault } from './all-reduce.ts'
import { payloadDigest, type ReceivedVerdict } from './audit-state.ts'
import { inCanonicalOrder, type WireContribution } from './combine.ts'
import { RejectedError, sessionKey, type ButterflyContext, type RoundSession } from './round-session.ts'
import { RoundStage } from './round-stage.ts'
import type { SessionRegistry } from './session-registry.ts'
import { FrameReader, writeFrame } from './wire.ts'

/**
 * The auditor of part `part`: the member `shift` places after the part's own reducer in ring order, or the one
 * after that when it reduced the part itself (as a stand-in). It depends on no peer's view of who is alive, so
 * members whose views differ after a failure still agree on it; `shift` comes from the group's hash
 * ({@link auditShift}), so which member checks which changes from group to group.
 */
export function auditorOf (members: readonly string[], part: number, reducedBy: string, shift = 1): string | null {
  const n = members.length
  if (n < 2) return null
  for (let k = shift; k < shift + 2; k++) {
    const m = members[(part + k) % n]
    if (m !== reducedBy) return m
  }
  return null
}

/** In [1, n-1]: how far from its reducer a part's auditor sits in this group's ring. */
export function auditShift (groupHash: string, n: number): number {
  if (n < 2) return 1
  return 1 + (Number.parseInt(groupHash.slice(0, 8), 16) % (n - 1))
}

/** A part's result as this peer holds it: the header (reducer, listed inputs) and the digest of its payload. */
export interface HeldResult {
  part: number
  header: ResultHeader
  digest: string
}

export interface AuditPolicy {
  rate: number
  random: () => number
}

export interface AuditOutcome {
  report: AuditReport
  /** Parts whose received result was wrong: the recomputed values to use instead. */
  corrected: Map<number, Float32Array>
}

type Recomputed = { digest: string, values: Float32Array } | { reason: string }

/**
 * The audits of one round at this peer. Each part is audited as soon as its result is here ({@link check}), while
 * the other parts still move: verdicts go out, and come in, as results arrive, not after the slowest one.
 */
export class RoundAudit<T> {
  private readonly report: AuditReport = { faults: [], recomputed: [], missingVerdicts: [], inconclusive: [], bytesSent: 0, bytesReceived: 0, durationMs: 0 }
  private readonly corrected = new Map<number, Float32Array>()
  private readonly pending: Array<Promise<void>> = []
  private readonly held: HeldResult[] = []

  constructor (private readonly service: ButterflyContext, private readonly session: RoundSession<T>, private readonly policy: AuditPolicy) {}

  /** Starts the audit of a part whose result is here (null: nobody reduced it, nothing to audit). */
  check (h: HeldResult | null): void {
    if (h == null) return
    this.held.push(h)
    const audit = this.auditPart(h)
    // Awaited in finish(); until then a failure (the round aborted) must not surface as an unhandled rejection.
    audit.catch(() => {})
    this.pending.push(audit)
  }

  /** Every part's result is in: checks this peer's own entries, then waits for every part's audit. */
  async finish (): Promise<AuditOutcome> {
    const { session, report } = this
    const started = performance.now()
    session.stages.advance(RoundStage.Auditing)
    for (const h of this.held) {
      if (h.header.reducer === session.self) continue
      const mine = h.header.contributors.find(c => c.peer === session.self)
      if (mine?.digest == null) continue
      if (mine.digest !== session.inputDigest(h.part, session.self) || mine.weight !== session.opts.weight) {
        this.fault({ part: h.part, reducer: h.header.reducer, kind: 'misreported-input', detectedBy: session.self })
      }
    }
    await Promise.all(this.pending)
    report.bytesSent = session.audit.bytesSent
    report.bytesReceived = session.audit.bytesReceived
    report.durationMs = performance.now() - started
    report.recomputed.sort((a, b) => a - b)
    report.missingVerdicts.sort((a, b) => a - b)
    report.faults.sort((a, b) => a.part - b.part)
    return { report, corrected: this.corrected }
  }

  private fault (f: ReducerFault): void {
    this.report.faults.push(f)
    this.service.warn({ round: this.session.key, ...f }, 'all-reduce: reducer caught lying')
  }

  /** Recomputes the part; on a result that differs from ours, keeps the recomputed one and reports the reducer. */
  private async recomputeAndJudge (h: HeldResult, detectedBy: string): Promise<{ audited: boolean, digest: string }> {
    const { part } = h
    if (!this.report.recomputed.includes(part)) this.report.recomputed.push(part)
    const r = await recompute(this.service, this.session, h)
    if ('reason' in r) {
      this.report.inconclusive.push({ part, reason: r.reason })
      return { audited: false, digest: h.digest }
    }
    if (r.digest !== h.digest) {
      this.corrected.set(part, r.values)
      this.fault({ part, reducer: h.header.reducer, kind: 'wrong-result', detectedBy, received: h.digest, recomputed: r.digest })
    }
    return { audited: true, digest: r.digest }
  }

  private async auditPart (h: HeldResult): Promise<void> {
    const { service, session, report, policy } = this
    const { part } = h
    const self = session.self
    const reducer = h.header.reducer
    const auditor = auditorOf(session.members, part, reducer, auditShift(session.ctx.group, session.members.length))
    if (auditor == null) return
    const waitMs = 2 * session.collectTimeoutMs(part, session.members)
    if (auditor === self) {
      let judged = { audited: false, digest: h.digest }
      if (policy.random() < policy.rate) judged = await this.recomputeAndJudge(h, self)
      const verdict: VerdictHeader = { ...session.frameBase(part), type: 'verdict', reducer, audited: judged.audited, result: judged.digest, fault: judged.digest !== h.digest }
      const copies = await sendVerdicts(service, session, verdict, waitMs)
      // A member holds another copy than ours and we did not recompute: the reducer may have lied to us alone.
      if (!judged.audited && !report.recomputed.includes(part) && copies.some(d => d !== h.digest)) await this.recomputeAndJudge(h, self)
      return
    }
    // An auditor this peer saw fail sends nothing: the part stands unaudited here.
    if (session.dead.has(auditor)) { report.missingVerdicts.push(part); return }
    const verdict = await waitForVerdict(service, session, part, waitMs)
    if (verdict == null) { report.missingVerdicts.push(part); return }
    if (verdict.header.result === h.digest) return
    // Our copy differs from what the auditor holds: one of them lies. Recompute rather than take either word.
    const judged = await this.recomputeAndJudge(h, verdict.from)
    if (judged.audited && judged.digest === h.digest) {
      report.inconclusive.push({ part, reason: `the verdict of ${verdict.from} (${verdict.header.audited ? 'recomputed' : 'its copy'}) differs from the result ${reducer} sent here, which recomputes correctly` })
    }
  }
}

/** Recomputes part `h.part` from the inputs its reducer listed, each fetched from its contributor. */
async function recompute<T> (service: ButterflyContext, session: RoundSession<T>, h: HeldResult): Promise<Recomputed> {
  const { part } = h
  const elements = session.partition.lengths[part]
  const listed = h.header.contributors
  if (listed.some(c => c.digest == null)) return { reason: `${h.header.reducer} listed its inputs without digests` }
  type Input = { weight: number, payload: Uint8Array } | { error: string }
  const inputs = await Promise.all(listed.map(async (c): Promise<Input> => {
    if (c.peer === session.self) return { weight: session.opts.weight, payload: session.payload(part) }
    try {
      return await fetchContribution(service, session, c.peer, part)
    } catch (err) {
      return { error: `${c.peer} did not send its contribution to part ${part}: ${(err as Error).message}` }
    }
  }))
  const contributions: Array<WireContribution<T>> = []
  for (let i = 0; i < listed.length; i++) {
    const c = listed[i]
    const input = inputs[i]
    if ('error' in input) return { reason: input.error }
    // Either the contributor sent us other bytes than it sent the reducer, or the reducer misreports them: no verdict on the reducer.
    if (payloadDigest(input.payload) !== c.digest || input.weight !== c.weight) return { reason: `the contribution of ${c.peer} differs from the listing of ${h.header.reducer}` }
    try {
      contributions.push({ peer: c.peer, weight: c.weight, value: session.aggregator.decodeContribution(input.payload, elements) })
    } catch (err) {
      return { reason: `the contribution of ${c.peer} does not decode: ${(err as Error).message}` }
    }
  }
  // The reducer's context (a checked aggregator runs the same checks on the same inputs; the members it refused
  // on arrival are not among the listed inputs and change only the result's meta, which is not digested).
  const context = { job: session.ctx.job, round: session.ctx.round, members: session.members, part }
  const reduced = await session.aggregator.reduce(inCanonicalOrder(contributions), elements, undefined, context)
  const values = reduced.decoded?.length === elements ? reduced.decoded : session.aggregator.decodeResult(reduced.payload, elements)
  return { digest: payloadDigest(reduced.payload), values }
}

/** Asks `peer` for its contribution to `part`, within a timeout sized from its measured speed. */
async function fetchContribution<T> (service: ButterflyContext, session: RoundSession<T>, peer: string, part: number): Promise<{ weight: number, payload: Uint8Array }> {
  const t = timeoutSignal(service.speeds.timeoutMs(peer, session.partBytes(part)), `${peer} took too long`, { clock: service.clock, signal: session.opts.signal })
  let stream: Stream | undefined
  const onAbort = (): void => { stream?.abort(t.signal.reason instanceof Error ? t.signal.reason : new Error(String(t.signal.reason))) }
  t.signal.addEventListener('abort', onAbort, { once: true })
  try {
    stream = await service.host.dialProtocol(peerIdFromString(peer), ALLREDUCE_AUDIT_PROTOCOL, { signal: t.signal, runOnLimitedConnection: true })
    const reader = new FrameReader(stream)
    const request: AuditFetchHeader = { ...session.frameBase(part), type: 'audit-fetch' }
    const sent = await writeFrame(stream, request, new Uint8Array(0), t.signal)
    await stream.close({ signal: t.signal })
    const frame = await reader.readFrame<AuditPayloadHeader | RejectHeader>({
      accept: (f) => {
        if (f.type !== 'audit-payload' && f.type !== 'reject') throw new InvalidMessageError(`unexpected ${f.type} frame from ${peer}`)
        validateFrameHeader(f, session.ctx, peer)
        if (f.part !== part) throw new InvalidMessageError(`contribution to part ${f.part} from ${peer}, asked for ${part}`)
        return f
      },
      maxPayload: (f) => f.type === 'audit-payload' ? session.aggregator.maxContributionBytes(session.partition.lengths[part]) : 0
    })
    countAudit(session, peer, sent, frame.bytes)
    if (frame.header.type === 'reject') throw new RejectedError(frame.header.reason, frame.header.message)
    return { weight: frame.header.weight, payload: frame.payload }
  } catch (err) {
    if (err instanceof InvalidMessageError) session.rejectedFrames++
    stream?.abort(err as Error)
    throw err
  } finally {
    t.clear()
    t.signal.removeEventListener('abort', onAbort)
  }
}

/**
 * Sends a verdict to every live member but this peer, and reads back the digest of each member's own copy of
 * the part (it answers once it has one). Returns those digests; a member that cannot be reached is waited out.
 */
async function sendVerdicts<T> (service: ButterflyContext, session: RoundSession<T>, verdict: VerdictHeader, ms: number): Promise<string[]> {
  const copies = await Promise.all(session.members.map(async (m): Promise<string | null> => {
    if (m === session.self || session.dead.has(m)) return null
    const t = timeoutSignal(ms, `${m} did not answer the verdict on part ${verdict.part}`, { clock: service.clock, signal: session.opts.signal })
    let stream: Stream | undefined
    const onAbort = (): void => { stream?.abort(t.signal.reason instanceof Error ? t.signal.reason : new Error(String(t.signal.reason))) }
    t.signal.addEventListener('abort', onAbort, { once: true })
    try {
      stream = await service.host.dialProtocol(peerIdFromString(m), ALLREDUCE_AUDIT_PROTOCOL, { signal: t.signal, runOnLimitedConnection: true })
      const reader = new FrameReader(stream)
      const sent = await writeFrame(stream, verdict, new Uint8Array(0), t.signal)
      await stream.close({ signal: t.signal })
      const answer = await reader.readFrame<VerdictHeader | RejectHeader>({
        accept: (f) => {
          if (f.type !== 'verdict' && f.type !== 'reject') throw new InvalidMessageError(`unexpected ${f.type} frame from ${m}`)
          validateFrameHeader(f, session.ctx, m)
          if (f.part !== verdict.part) throw new InvalidMessageError(`copy of part ${f.part} from ${m}, asked about ${verdict.part}`)
          return f
        },
        maxPayload: () => 0
      })
      countAudit(session, m, sent, answer.bytes)
      // Refused (its round is over there, or it has no result of the part): it has no copy to compare.
      if (answer.header.type === 'reject') return null
      return answer.header.result
    } catch (err) {
      if (err instanceof InvalidMessageError) session.rejectedFrames++
      stream?.abort(err as Error)
      service.log({ round: session.key, part: verdict.part, to: m, err: (err as Error).message }, 'all-reduce: verdict not answered')
      return null
    } finally {
      t.clear()
      t.signal.removeEventListener('abort', onAbort)
    }
  }))
  return copies.filter((d): d is string => d != null)
}

/** The verdict on `part` from its auditor, or null when none came within `ms`. Rejects when the round is aborted. */
async function waitForVerdict<T> (service: ButterflyContext, session: RoundSession<T>, part: number, ms: number): Promise<ReceivedVerdict | null> {
  const d = session.audit.verdicts[part]
  if (d.settled) return await d.promise
  const round = session.opts.signal
  const t = timeoutSignal(ms, 'no verdict', { clock: service.clock, signal: round })
  try {
    return await new Promise<ReceivedVerdict | null>((resolve, reject) => {
      t.signal.addEventListener('abort', () => { if (round?.aborted === true) reject(round.reason); else resolve(null) }, { once: true })
      void d.promise.then(resolve)
    })
  } finally {
    t.clear()
  }
}

function countAudit<T> (session: RoundSession<T>, peer: string, sent: number, received: number): void {
  session.count(peer, sent, received)
  session.audit.bytesSent += sent
  session.audit.bytesReceived += received
}

/** Serves one inbound stream of the audit protocol: an audit-fetch (answered once per requester and part) or a verdict. Never throws. */
export async function serveAudit (service: ButterflyContext, sessions: SessionRegistry, stream: Stream, connection: Connection): Promise<void> {
  const remote = connection.remotePeer.toString()
  const reader = new FrameReader(stream)
  let session: RoundSession<any> | undefined
  let header: FrameHeader | undefined
  try {
    const { header: h, bytes } = await reader.readHeader<AuditFetchHeader | VerdictHeader>(async (f) => {
      if (f.type !== 'audit-fetch' && f.type !== 'verdict') throw new InvalidMessageError(`expected an audit-fetch or verdict frame, got ${f.type}`)
      header = f
      session = await sessions.waitFor(sessionKey(f.job, f.round, f.group))
      if (session == null || session.stages.over) throw new RejectedError('no-session', `no round ${f.job}#${f.round} with this group here`)
      validateFrameHeader(f, session.ctx, remote)
      if (service.excluded.has(remote)) throw new RejectedError('excluded', `${remote} was caught lying about a part's result and is excluded`)
      return f
    })
    const s = session!
    const empty = await reader.readPayload(0, `all-reduce ${h.type} payload`)
    countAudit(s, remote, 0, bytes + 4 + empty.byteLength)
    if (h.type === 'verdict') {
      await reader.expectEnd()
      // Only the part's auditor speaks for it; anyone else's verdict is ignored (and not answered).
      if (auditorOf(s.members, h.part, h.reducer, auditShift(s.ctx.group, s.members.length)) !== remote) throw new RejectedError('invalid', `${remote} is not the auditor of part ${h.part}`)
      s.audit.verdicts[h.part].resolve({ from: remote, header: h })
      // Answer with the digest of our own copy, once we have it: the auditor learns whether the reducer sent it another.
      const t = timeoutSignal(2 * s.collectTimeoutMs(h.part, s.members), `no result of part ${h.part} here`, { clock: service.clock })
      try {
        const mine = await Promise.race([s.audit.held[h.part].promise, new Promise<null>(resolve => { t.signal.addEventListener('abort', () => { resolve(null) }, { once: true }) })])
        if (mine == null) throw new RejectedError('unavailable', `no result of part ${h.part} here`)
        const copy: VerdictHeader = { ...s.frameBase(h.part), type: 'verdict', reducer: h.reducer, audited: false, result: mine, fault: false }
        countAudit(s, remote, await writeFrame(stream, copy, new Uint8Array(0), t.signal), 0)
        await stream.close({ signal: t.signal })
      } finally {
        t.clear()
      }
      return
    }
    const served = `${remote}#${h.part}`
    if (s.audit.served.has(served)) throw new RejectedError('duplicate', `part ${h.part}'s contribution was already sent to ${remote}`)
    s.audit.served.add(served)
    const t = timeoutSignal(service.speeds.timeoutMs(remote, s.partBytes(h.part)), `${remote} took too long to take part ${h.part}'s contribution`, { clock: service.clock })
    try {
      const answer: AuditPayloadHeader = { ...s.frameBase(h.part), type: 'audit-payload', weight: s.opts.weight }
      s.ownSends++
      const sent = await writeFrame(stream, answer, s.payload(h.part), t.signal)
      countAudit(s, remote, sent, 0)
      await stream.close({ signal: t.signal })
    } finally {
      t.clear()
      s.ownSends--
    }
  } catch (err) {
    let reason: RejectReason | null = null
    if (err instanceof RejectedError) reason = err.reason
    else if (err instanceof InvalidMessageError) {
      reason = 'invalid'
      service.stats.rejectedFrames++
      if (session != null) session.rejectedFrames++
    }
    service.log({ remote, err: (err as Error).message }, 'all-reduce: audit stream refused')
    if (reason != null && header != null && stream.writeStatus === 'writable') {
      try {
        const reject: RejectHeader = {
          v: ALLREDUCE_WIRE_VERSION, job: header.job, round: header.round, group: header.group, part: header.part,
          offset: header.offset, elements: header.elements, type: 'reject', reason, message: (err as Error).message.slice(0, 512)
        }
        await writeFrame(stream, reject, new Uint8Array(0))
        await stream.close()
        return
      } catch { /* fall through to abort */ }
    }
    stream.abort(err as Error)
  }
}
