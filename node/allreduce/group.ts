/** The group of one all-reduce round: who takes part, in which order, and how the vector is split among them. */
import { canonicalOrder, groupHash, MAX_GROUP_SIZE } from '../../protocol/allreduce.ts'
import { partitionVector, speedShares, type Partition } from './partition.ts'

export interface RoundGroup {
  job: string
  round: number
  /** Members in canonical order (sorted peer ids); member i reduces part i. */
  members: readonly string[]
  vectorLength: number
  /** Upload speed each member announced (bytes/s), by member index; a hint for timeouts and balancing. */
  speedBps?: readonly number[]
  /** Identifies job, round, vector length and membership: frames carry it and members with another view refuse them. */
  hash: string
}

export interface MakeGroupOptions {
  job: string
  round: number
  members: Iterable<string>
  vectorLength: number
  /** Which try of the round this group is (0 first); part of the group hash. */
  attempt?: number
  /** Announced speeds by peer id. */
  speeds?: ReadonlyMap<string, number>
}

export function makeGroup (opts: MakeGroupOptions): RoundGroup {
  const members = canonicalOrder(opts.members)
  if (members.length === 0 || members.length > MAX_GROUP_SIZE) throw new RangeError(`a group has 1 to ${MAX_GROUP_SIZE} members, not ${members.length}`)
  return {
    job: opts.job,
    round: opts.round,
    members,
    vectorLength: opts.vectorLength,
    speedBps: opts.speeds != null ? members.map(m => opts.speeds?.get(m) ?? 0) : undefined,
    hash: groupHash(opts.job, opts.round, members, opts.vectorLength, opts.attempt ?? 0)
  }
}

/** Equal parts by default; with `balanceBySpeed`, parts proportional to the (clamped) announced speeds. */
export function partitionGroup (group: RoundGroup, balanceBySpeed = false): Partition {
  const n = group.members.length
  if (balanceBySpeed && group.speedBps != null && group.speedBps.every(s => s > 0)) {
    return partitionVector(group.vectorLength, speedShares(group.speedBps))
  }
  return partitionVector(group.vectorLength, n)
}
