/**
 * In-memory stand-ins for the reduce step's components (no processes, no libp2p): matchmaking that forms the
 * group a test scripts, an all-reduce among the members of a shared in-memory group, a manual clock.
 */
import type { AllReduceResult, GroupAllReduce, RunOptions } from '../../node/allreduce/all-reduce.ts'
import { inCanonicalOrder } from '../../node/allreduce/combine.ts'
import { makeGroup, partitionGroup } from '../../node/allreduce/group.ts'
import type { FormGroupOptions, FormGroupResult } from '../../node/allreduce/matchmaking.ts'
import type { GroupFormation } from '../../node/round/allreduce-averager.ts'
import type { Clock } from '../../node/time/clock.ts'

/** Forms the group the test sets (`members`, or none: this peer is left out); records what it was asked. */
export class ScriptedMatchmaking implements GroupFormation {
  readonly calls: FormGroupOptions[] = []
  joined: string[] = []
  highest = -1
  constructor (public members: string[] | null) {}
  join (job: string): void { this.joined.push(job) }
  stop (): void { this.joined = [] }
  highestAttempt (): number { return this.highest }
  async formGroup (opts: FormGroupOptions): Promise<FormGroupResult> {
    this.calls.push(opts)
    if (this.members == null) return { group: null, view: [], excluded: [] }
    const group = makeGroup({ job: opts.job, round: opts.round, attempt: opts.attempt, members: this.members, vectorLength: opts.vectorLength })
    return { group, view: [...group.members], excluded: [] }
  }
}

/**
 * The members of one group exchanging parts in memory, as a correct all-reduce does: each part is reduced
 * from what every live member sent for it (the payloads as given, decoded by the aggregator), in canonical
 * order; a crashed member sends nothing (its part is reduced by a stand-in); a member that crashes mid-round
 * is in the parts it reached and gets no result.
 */
export class InMemoryGroup {
  /** Members that never take part in a round. */
  readonly crashed = new Set<string>()
  /** Members that crash mid-round, after their contributions to these parts arrived. */
  readonly crashesAfter = new Map<string, number[]>()
  /** Every payload each member sent, round after round. */
  readonly sent = new Map<string, Uint8Array[][]>()
  /** What a part's listing says each contribution's digest is (as reducers with audits on do); none by default. */
  listDigest?: (peer: string, part: number, payload: Uint8Array) => string | undefined
  private readonly rounds = new Map<string, { joined: Map<string, RunOptions<any>>, done: Promise<void>, release: () => void }>()

  member (peer: string): GroupAllReduce {
    return {
      start: async () => {},
      stop: async () => {},
      run: async <T>(opts: RunOptions<T>) => await this.run(peer, opts)
    }
  }

  private async run<T> (peer: string, opts: RunOptions<T>): Promise<AllReduceResult> {
    const g = opts.group
    let round = this.rounds.get(g.hash)
    if (round == null) {
      let release!: () => void
      const done = new Promise<void>(resolve => { release = resolve })
      round = { joined: new Map(), done, release }
      this.rounds.set(g.hash, round)
    }
    const partition = partitionGroup(g, opts.balanceBySpeed === true)
    const payloads = g.members.map((_m, k) => opts.payloads?.[k] ?? opts.aggregator.encodeContribution(opts.vector.subarray(partition.offsets[k], partition.offsets[k] + partition.lengths[k]), opts.weight))
    // Copies: the encode step reuses its payloads' memory once the round is over.
    this.sent.set(peer, [...(this.sent.get(peer) ?? []), payloads.map(p => p.slice())])
    round.joined.set(peer, { ...opts, payloads })
    if (g.members.every(m => this.crashed.has(m) || round.joined.has(m))) round.release()
    await round.done
    if (this.crashesAfter.has(peer)) throw new Error(`${peer} crashed`)

    // As the butterfly: assembled in the caller's array when it lends one, every part written.
    const vector = opts.into ?? new Float32Array(g.vectorLength)
    const elements = new Map<string, number>()
    const parts: AllReduceResult['parts'] = []
    for (let k = 0; k < g.members.length; k++) {
      const length = partition.lengths[k]
      const from = [...round.joined].filter(([m]) => this.crashesAfter.get(m)?.includes(k) ?? true)
      const contributions = inCanonicalOrder(from.map(([m, o]) => ({ peer: m, weight: o.weight, value: opts.aggregator.decodeContribution(o.payloads![k], length), digest: this.listDigest?.(m, k, o.payloads![k]) })))
      const reduced = await opts.aggregator.reduce(contributions, length, undefined, { job: g.job, round: g.round, members: g.members, part: k })
      vector.set(opts.aggregator.decodeResult(reduced.payload, length), partition.offsets[k])
      for (const c of contributions) elements.set(c.peer, (elements.get(c.peer) ?? 0) + length)
      const reducedBy = g.members.find((m, i) => i >= k && !this.crashed.has(m) && !this.crashesAfter.has(m)) ?? g.members.find(m => !this.crashed.has(m))!
      parts.push({ index: k, offset: partition.offsets[k], elements: length, reducer: g.members[k], reducedBy, standIn: reducedBy !== g.members[k], contributors: contributions.map(c => c.digest != null ? { peer: c.peer, weight: c.weight, digest: c.digest } : { peer: c.peer, weight: c.weight }), meta: reduced.meta, localOnly: false })
    }
    const contributors = inCanonicalOrder([...elements].map(([m, n]) => ({ peer: m, weight: round.joined.get(m)!.weight, elements: n, fraction: n / g.vectorLength })))
    const dropped = g.members.filter(m => (elements.get(m) ?? 0) < g.vectorLength)
    // As the butterfly: the lent payloads are handed back once nothing reads them (here: at once, they were copied).
    if (dropped.length === 0) setTimeout(() => { opts.releasePayloads?.() }, 0)
    return {
      vector, group: g, parts, contributors, dropped, standIns: [], traffic: [], bytesSent: 1000, bytesReceived: 1000, durationMs: 10, complete: true, rejectedFrames: 0
    }
  }
}

/** A clock whose time moves only when the test sets it. */
export class ManualClock implements Clock {
  t = 0
  now = (): number => this.t
  setTimeout = (fn: () => void, ms: number): unknown => setTimeout(fn, ms)
  clearTimeout = (h: unknown): void => { clearTimeout(h as ReturnType<typeof setTimeout>) }
}
