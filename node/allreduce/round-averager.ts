/**
 * One round's averaging as the round loop sees it: form the group on gossip, then all-reduce in it.
 * Its `average(round, update, signal)` has the shape of the round loop's `RoundAverager`.
 */
import type { Clock } from '../time/clock.ts'
import { systemClock } from '../time/clock.ts'
import type { ButterflyAllReduce, AllReduceResult } from './butterfly.ts'
import type { PartAggregator } from './combine.ts'
import type { Matchmaking } from './matchmaking.ts'

export class NotInGroupError extends Error {
  override name = 'NotInGroupError'
}

export interface GroupAveragerOptions {
  job: string
  matchmaking: Matchmaking
  allReduce: ButterflyAllReduce
  /** The codec id announced at matchmaking (peers with another codec are not grouped) and the aggregator using it. */
  codecId: string
  aggregator: PartAggregator<any>
  /** When the ready window of `round` closes (absolute ms on `clock`); default: `readyWindowMs` after the call. */
  deadlineFor?: (round: number) => number
  readyWindowMs?: number
  /** A group smaller than this fails the round (a peer alone is not averaging). Default 1. */
  minGroupSize?: number
  balanceBySpeed?: boolean
  clock?: Clock
}

export interface GroupAveragedUpdate {
  average: Float32Array
  /** Accepted samples by peer: a peer in only some parts counts for that fraction of its samples. */
  contributions: Array<{ peer: string, samples: number }>
  dropped: string[]
  bytesSent: number
  bytesReceived: number
  /** The full report of the all-reduce. */
  report: AllReduceResult
}

export class GroupAverager {
  private lastUploadBps: number | undefined

  constructor (private readonly opts: GroupAveragerOptions) {}

  async average (round: number, update: { pseudoGradient: Float32Array, samples: number }, signal: AbortSignal): Promise<GroupAveragedUpdate> {
    const clock = this.opts.clock ?? systemClock
    const deadline = this.opts.deadlineFor?.(round) ?? clock.now() + (this.opts.readyWindowMs ?? 5_000)
    const { group } = await this.opts.matchmaking.formGroup({
      job: this.opts.job,
      round,
      vectorLength: update.pseudoGradient.length,
      codec: this.opts.codecId,
      speedBps: this.lastUploadBps ?? this.opts.allReduce.speeds.policy.defaultBps,
      deadline,
      signal
    })
    if (group == null) throw new NotInGroupError(`round ${round}: announced too late to join the group`)
    if (group.members.length < (this.opts.minGroupSize ?? 1)) throw new NotInGroupError(`round ${round}: group of ${group.members.length} is below the minimum`)
    const report = await this.opts.allReduce.run({
      group, vector: update.pseudoGradient, weight: update.samples, aggregator: this.opts.aggregator, balanceBySpeed: this.opts.balanceBySpeed, signal
    })
    if (report.durationMs > 0 && report.bytesSent > 0) this.lastUploadBps = report.bytesSent / (report.durationMs / 1000)
    return {
      average: report.vector,
      contributions: report.contributors.map(c => ({ peer: c.peer, samples: Math.round(c.weight * c.fraction) })),
      dropped: report.dropped,
      bytesSent: report.bytesSent,
      bytesReceived: report.bytesReceived,
      report
    }
  }
}
