/**
 * Butterfly all-reduce over `/nearai/allreduce/1.0.0`: the vector is split into one contiguous part per
 * group member; every member sends part i to member i, member i reduces its part with the round's
 * aggregator and sends the result back to every member, and each member assembles the full result.
 * No peer ever holds another peer's whole update.
 *
 * Faults: a member that cannot be reached, refuses, or goes silent is dropped. Parts whose reducer was
 * dropped are re-collected by a stand-in, the next live member in ring order, from the survivors (who
 * still hold their own contributions). A member asked to stand in for a part it already holds the
 * result of relays that result, so members converge on the same bytes.
 *
 * Timeouts adapt to each peer (see timeouts.ts): a reducer waits for contributions until a deadline
 * sized from the senders' measured throughput (EWMA across rounds), and past it only for senders whose
 * bytes are still arriving; a member waits for its reducer as long as bytes or heartbeats keep coming
 * (silence longer than floor + multiplier × latency is a stall), up to the policy's ceiling.
 *
 * One stream per (member, part): the member sends a `contribute` header, waits for `accept` (or
 * `reject`), sends the payload, half-closes, and reads `wait` heartbeats then one `result` (or
 * `reject`) frame (contribute.ts; the reducer's side is reducer.ts). Each round at this peer is a
 * RoundSession (round-session.ts) whose stage (round-stage.ts) every log line and error names.
 */
import type { Connection, Stream } from '@libp2p/interface'
import { ALLREDUCE_AUDIT_PROTOCOL, ALLREDUCE_PROTOCOL } from '../../protocol/allreduce.ts'
import { systemClock, type Clock } from '../time/clock.ts'
import { DEFAULT_AUDIT_RATE, type AllReduceComponents, type AllReduceInit, type AllReduceLogger, type AllReduceResult, type ContributorRecord, type GroupAllReduce, type PartReport, type RunOptions } from './all-reduce.ts'
import { RoundAudit, serveAudit, type AuditOutcome, type AuditPolicy, type HeldResult } from './audit.ts'
import { payloadDigest } from './audit-state.ts'
import { decodeResultInto, inCanonicalOrder } from './combine.ts'
import { contribute } from './contribute.ts'
import type { PartOutcome } from './part-collector.ts'
import { serveContribution } from './reducer.ts'
import { RoundSession, type ButterflyContext } from './round-session.ts'
import { AllReduceRoundError } from './round-stage.ts'
import { SessionRegistry } from './session-registry.ts'
import { PeerSpeedTracker } from './timeouts.ts'
import { BufferPool } from '../memory/buffer-pool.ts'

export type { AllReduceHost, AllReduceComponents, AllReduceInit, AllReduceLogger, RunOptions, PartReport, ContributorRecord, AllReduceResult, GroupAllReduce, AuditOptions, AuditReport, ReducerFault } from './all-reduce.ts'
export { sessionKey } from './round-session.ts'
export { RoundStage, AllReduceRoundError } from './round-stage.ts'

export class ButterflyAllReduce implements GroupAllReduce, ButterflyContext {
  readonly host: AllReduceComponents['host']
  readonly speeds: PeerSpeedTracker
  readonly stats = { rejectedFrames: 0, inboundStreams: 0 }
  readonly clock: Clock
  readonly pool: BufferPool
  readonly sessionWaitMs: number
  readonly auditing: boolean
  /** Members caught lying about a part's result (by this peer's own audit or recomputation): left out of later rounds. */
  readonly excluded = new Set<string>()
  readonly corruptResult?: (part: number, payload: Uint8Array) => Uint8Array
  private readonly auditPolicy: AuditPolicy
  private readonly logger?: AllReduceLogger
  private readonly sessions: SessionRegistry
  private readonly lingerMs: number
  private readonly maxInboundStreams: number
  private started = false

  log (obj: object, msg: string): void { this.logger?.debug(obj, msg) }
  warn (obj: object, msg: string): void { (this.logger?.warn ?? this.logger?.debug)?.call(this.logger, obj, msg) }

  constructor (components: AllReduceComponents, init: AllReduceInit = {}) {
    this.host = components.host
    this.clock = components.clock ?? systemClock
    this.logger = components.logger
    this.speeds = new PeerSpeedTracker(init.timeouts)
    this.pool = init.bufferPool ?? new BufferPool()
    this.sessionWaitMs = init.sessionWaitMs ?? this.speeds.policy.floorMs
    this.lingerMs = init.lingerMs ?? this.speeds.policy.floorMs
    this.maxInboundStreams = init.maxInboundStreams ?? 64
    this.sessions = new SessionRegistry(this.clock, this.sessionWaitMs, init.maxPendingInbound ?? 1024)
    this.auditing = init.audit !== false
    const audit = init.audit === false ? {} : init.audit ?? {}
    const rate = audit.rate ?? DEFAULT_AUDIT_RATE
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`audit rate ${rate} is not in [0, 1]`)
    this.auditPolicy = { rate, random: audit.random ?? Math.random }
    this.corruptResult = init.testing?.corruptResult
  }

  async start (): Promise<void> {
    if (this.started) return
    await this.host.handle(ALLREDUCE_PROTOCOL, (stream: Stream, connection: Connection) => { void serveContribution(this, this.sessions, stream, connection) }, {
      maxInboundStreams: this.maxInboundStreams,
      maxOutboundStreams: this.maxInboundStreams,
      runOnLimitedConnection: true
    })
    if (this.auditing) {
      await this.host.handle(ALLREDUCE_AUDIT_PROTOCOL, (stream: Stream, connection: Connection) => { void serveAudit(this, this.sessions, stream, connection) }, {
        maxInboundStreams: this.maxInboundStreams,
        maxOutboundStreams: this.maxInboundStreams,
        runOnLimitedConnection: true
      })
    }
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.host.unhandle(ALLREDUCE_PROTOCOL)
    if (this.auditing) await this.host.unhandle(ALLREDUCE_AUDIT_PROTOCOL)
    this.sessions.closeAll()
  }

  /** Averages `vector` with the rest of `group`. Resolves when every part is in (or given up on). */
  async run<T> (opts: RunOptions<T>): Promise<AllReduceResult> {
    if (!this.started) throw new Error('ButterflyAllReduce is not started')
    const startedAt = this.clock.now()
    const session = new RoundSession<T>(this, opts)
    this.sessions.add(session)
    const g = opts.group
    g.members.forEach((m, i) => { const s = g.speedBps?.[i]; if (s != null && s > 0) this.speeds.hint(m, s) })

    // Members caught lying in an earlier round are out from the start: their parts go to stand-ins.
    const excluded = g.members.filter(m => m !== session.self && this.excluded.has(m))
    for (const m of excluded) session.drop(m)

    let reports: Array<{ report: PartReport, values: Float32Array | null, held: HeldResult | null }>
    let audit: AuditOutcome | null = null
    const audits = this.auditing && g.members.length > 1 ? new RoundAudit(this, session, this.auditPolicy) : null
    try {
      session.startCollector(session.selfIndex, new Set(g.members), [])
      reports = await Promise.all(g.members.map(async (_m, part) => {
        const obtained = await this.obtainPart(session, part)
        audits?.check(obtained.held)
        return obtained
      }))
      await Promise.allSettled([...session.answering])
      audit = await audits?.finish() ?? null
    } catch (err) {
      this.sessions.remove(session)
      const reached = session.fail()
      this.log({ round: session.key, stage: reached, err: (err as Error).message }, 'all-reduce: round failed')
      throw new AllReduceRoundError(session.key, reached, err)
    }

    // Results decoded from the wire are in place already; this peer's own reductions and local fallbacks are copied.
    const vector = session.result
    for (const r of reports) {
      if (r.values == null) vector.set(session.slice(r.report.index), r.report.offset)
      else if (r.values.buffer !== vector.buffer || r.values.byteOffset !== vector.byteOffset + r.report.offset * 4) vector.set(r.values, r.report.offset)
    }
    // Parts whose reducer was caught lying: the recomputed result instead, and the liar is out of later rounds.
    for (const [part, values] of audit?.corrected ?? []) vector.set(values, session.partition.offsets[part])
    for (const f of audit?.report.faults ?? []) if (f.reducer !== session.self) this.excluded.add(f.reducer)
    const durationMs = this.clock.now() - startedAt
    const parts = reports.map(r => r.report)
    const byPeer = new Map<string, ContributorRecord>()
    for (const p of parts) {
      for (const c of p.contributors) {
        const rec = byPeer.get(c.peer) ?? { peer: c.peer, weight: c.weight, elements: 0, fraction: 0 }
        rec.elements += p.elements
        byPeer.set(c.peer, rec)
      }
    }
    // Dropped: failed during the round, or missing from part of the average.
    const dropped = g.members.filter(m => session.dead.has(m) || (byPeer.get(m)?.elements ?? 0) < g.vectorLength)
    session.done()
    const linger = this.clock.setTimeout(() => {
      this.sessions.remove(session)
      session.close()
      session.releaseResults()
      // Nothing reads the lent payloads any more: every stream that carried them ended normally (no member was
      // dropped; after a drop an aborted stream might still hold a slice of them) and no audit fetch is sending one.
      if (dropped.length === 0 && session.ownSends === 0) opts.releasePayloads?.()
    }, this.lingerMs)
    // Answering late requests is no reason to keep a process alive.
    ;(linger as { unref?: () => void } | undefined)?.unref?.()

    const contributors = inCanonicalOrder([...byPeer.values()]).map(r => ({ ...r, fraction: g.vectorLength > 0 ? r.elements / g.vectorLength : 1 }))
    const traffic = [...session.traffic].map(([peer, t]) => ({ peer, ...t })).sort((a, b) => (a.peer < b.peer ? -1 : 1))
    return {
      vector,
      group: g,
      parts,
      contributors,
      dropped,
      standIns: session.standIns,
      traffic,
      bytesSent: traffic.reduce((a, t) => a + t.sent, 0),
      bytesReceived: traffic.reduce((a, t) => a + t.received, 0),
      durationMs,
      complete: parts.every(p => !p.localOnly),
      rejectedFrames: session.rejectedFrames,
      excluded,
      audit: audit?.report ?? null
    }
  }

  /** Gets part `part` reduced: by this peer, by its reducer, or by a stand-in in ring order. */
  private async obtainPart<T> (session: RoundSession<T>, part: number): Promise<{ report: PartReport, values: Float32Array | null, held: HeldResult | null }> {
    const n = session.members.length
    const reducer = session.members[part]
    const elements = session.partition.lengths[part]
    let outcome: PartOutcome | null = null
    for (let k = 0; k < n && outcome == null; k++) {
      const candidate = session.members[(part + k) % n]
      if (session.dead.has(candidate)) continue
      if (candidate === session.self) {
        if (k > 0 && !session.collectors.has(part)) {
          const expected = new Set(session.members.filter(m => m !== reducer && !session.dead.has(m)))
          session.startCollector(part, expected, session.pendingStandIn.get(part)?.values() ?? [])
          session.pendingStandIn.delete(part)
        }
        outcome = await session.outcomes[part].promise
        if (outcome.localOnly === true) outcome = null
        break
      }
      try {
        outcome = await contribute(this, session, candidate, part, k > 0)
      } catch (err) {
        session.opts.signal?.throwIfAborted()
        this.log({ part, candidate, stage: session.stage, err: (err as Error).message }, 'all-reduce: member failed for a part')
        session.drop(candidate)
      }
    }
    // A relayed result for a part this peer was asked to stand in for: pass it on.
    if (outcome != null) session.outcomes[part].resolve(outcome)
    if (outcome != null && outcome.header.reducer !== reducer) session.standIns.push({ part, failed: reducer, standIn: outcome.header.reducer })
    const report: PartReport = {
      index: part,
      offset: session.partition.offsets[part],
      elements,
      reducer,
      reducedBy: outcome?.header.reducer ?? null,
      standIn: outcome != null && outcome.header.reducer !== reducer,
      contributors: outcome?.header.contributors ?? [{ peer: session.self, weight: session.opts.weight }],
      meta: outcome?.header.meta,
      localOnly: outcome == null
    }
    if (outcome == null) {
      // Nobody could reduce it: the caller still gets a full vector, and the report says so.
      session.outcomes[part].resolve({ header: { ...session.frameBase(part), type: 'result', reducer: session.self, contributors: report.contributors }, payload: new Uint8Array(0), localOnly: true })
      session.audit.held[part].resolve(null)
      return { report, values: null, held: null }
    }
    const held: HeldResult | null = this.auditing ? { part, header: outcome.header, digest: payloadDigest(outcome.payload) } : null
    session.audit.held[part].resolve(held?.digest ?? null)
    if (outcome.values != null && outcome.values.length === elements) return { report, values: outcome.values, held }
    const slot = session.resultSlot(part)
    decodeResultInto(session.aggregator, outcome.payload, slot)
    return { report, values: slot, held }
  }
}

