/**
 * Gossipsub topics. Every topic carries one message schema (see gossip.ts); topics are versioned by
 * their last path segment so that a schema change never mixes old and new messages on one topic.
 */
import { GOSSIP_VERSION } from './ids.ts'
import { JOB_ID_PATTERN } from './primitives.ts'

export { JOB_ID_PATTERN }

/** Network-wide presence: peers announce what they are and which jobs they work on. */
export const PEERS_TOPIC = `/nearai/peers/${GOSSIP_VERSION}`

/** Per-job round announcements: the outcome of each training round (weights hash, checkpoint, contributors). */
export function jobRoundsTopic (jobId: string): string {
  assertTopicSegment(jobId)
  return `/nearai/job/${jobId}/rounds/${GOSSIP_VERSION}`
}

const JOB_TOPIC_PATTERN = /^\/nearai\/job\/([^/]+)\/([a-z]+)\/(\d+)$/

/** The parts of a per-job topic name (`/nearai/job/<job>/<kind>/<version>`), or undefined for any other topic. */
export function parseJobTopic (topic: string): { job: string, kind: string, version: number } | undefined {
  const match = JOB_TOPIC_PATTERN.exec(topic)
  return match == null ? undefined : { job: match[1], kind: match[2], version: Number(match[3]) }
}

export function assertTopicSegment (segment: string): void {
  if (!JOB_ID_PATTERN.test(segment)) {
    throw new TypeError(`invalid job id "${segment}": use 1-64 letters, digits, '.', '_' or '-'`)
  }
}
