/**
 * Gossipsub topics. Every topic carries one message schema (see gossip.ts); topics are versioned by
 * their last path segment so that a schema change never mixes old and new messages on one topic.
 */
import { GOSSIP_VERSION } from './ids.ts'

/** Network-wide presence: peers announce what they are and which jobs they work on. */
export const PEERS_TOPIC = `/nearai/peers/${GOSSIP_VERSION}`

/** Per-job round announcements: the outcome of each training round (weights hash, checkpoint, contributors). */
export function jobRoundsTopic (jobId: string): string {
  assertTopicSegment(jobId)
  return `/nearai/job/${jobId}/rounds/${GOSSIP_VERSION}`
}

/** A job id is used inside topic names and DHT keys, so it is restricted to a safe alphabet. */
export const JOB_ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/

export function assertTopicSegment (segment: string): void {
  if (!JOB_ID_PATTERN.test(segment)) {
    throw new TypeError(`invalid job id "${segment}": use 1-64 letters, digits, '.', '_' or '-'`)
  }
}
