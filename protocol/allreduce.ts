/**
 * The all-reduce protocol of a training round: the gossip messages that form a round's group
 * (matchmaking) and the frames that move parts of the update between group members (butterfly
 * all-reduce). Pure: no sockets, no clocks.
 *
 * Framing on `/nearai/allreduce/1.0.0` streams, big-endian:
 *
 *     [u32 header length][header: UTF-8 JSON][u32 payload length][payload bytes]
 *
 * The header is small and bounded by {@link MAX_FRAME_HEADER_BYTES}; the payload is opaque to the
 * protocol (codec-encoded floats, or ciphertext for a homomorphic combine rule) and is bounded by the
 * receiver from the header it has already validated (the part's element count), never by the wire.
 *
 * One stream per (member, part), opened by the member:
 *
 *     member  → reducer   contribute header         (job, round, group hash, part, weight)
 *     reducer → member    accept | reject            (empty payload)
 *     member  → reducer   contribute payload length + payload, then half-close
 *     reducer → member    wait*                      (heartbeats while it collects the others' parts)
 *     reducer → member    result | reject            (the reduced part), then close
 *
 * The reducer answers the header before any bulk bytes move, so a member with another view of the
 * group, an outsider, or a round that has not begun there costs a round trip, not a part's upload.
 * Heartbeats let the member tell a reducer that is waiting for slow peers from one that has stalled.
 */
import { z } from 'zod'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { decodeJson, encodeJson } from './codec.ts'
import { InvalidMessageError, MessageTooLargeError } from './errors.ts'
import { assertTopicSegment, parseJobTopic } from './topics.ts'
import { JobId, PeerIdString, Sha256Hex } from './primitives.ts'

export const ALLREDUCE_PROTOCOL = '/nearai/allreduce/1.0.0'
/** Audits of part results (reducer-audit frames: audit-fetch, audit-payload, verdict), one frame exchange per stream. */
export const ALLREDUCE_AUDIT_PROTOCOL = '/nearai/allreduce-audit/1.0.0'
export const ALLREDUCE_WIRE_VERSION = 1
/** Version of the ready-topic messages; it is also the topic's last path segment. */
export const READY_TOPIC_VERSION = 1

/** A group is small: the butterfly's cost per peer grows with the group, and gossip carries its member list. */
export const MAX_GROUP_SIZE = 256
/** Vectors are indexed by u32 offsets. */
export const MAX_VECTOR_LENGTH = 2 ** 31 - 1
export const MAX_FRAME_HEADER_BYTES = 16 * 1024
export const MAX_READY_MESSAGE_BYTES = 32 * 1024
/**
 * The most samples one peer's update may stand for in one round: a job's inner steps × batch size is bounded
 * by it (node/training/job-spec.ts), so a larger claim is a lie or a bug, refused with the frame or message.
 */
export const MAX_ROUND_SAMPLES = 1_000_000_000
/** A weight is a count of samples ({@link MAX_ROUND_SAMPLES}). */
export const MAX_WEIGHT = MAX_ROUND_SAMPLES

/** Where peers announce they are ready to average round `round` of job `jobId`. */
export function jobReadyTopic (jobId: string): string {
  assertTopicSegment(jobId)
  return `/nearai/job/${jobId}/ready/${READY_TOPIC_VERSION}`
}

const Round = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const Weight = z.number().finite().nonnegative().max(MAX_WEIGHT)

/** "I am ready to average this round": published on {@link jobReadyTopic} before the round's deadline. */
export const ReadyAnnouncement = z.object({
  v: z.literal(READY_TOPIC_VERSION),
  type: z.literal('allreduce-ready'),
  job: JobId,
  round: Round,
  /** Retries of a round whose group failed to form count up from 0, so a retry never meets the stale views of an earlier try. */
  attempt: z.number().int().nonnegative().max(1_000_000).default(0),
  peerId: PeerIdString,
  vectorLength: z.number().int().positive().max(MAX_VECTOR_LENGTH),
  codec: z.string().min(1).max(32),
  /** Measured upload throughput in bytes/s: a hint for timeouts and partition sizes. */
  speedBps: z.number().finite().positive().max(1e12),
  at: z.number().int().nonnegative()
}).strict()
export type ReadyAnnouncement = z.infer<typeof ReadyAnnouncement>

/** "This is the group I saw at the deadline": members confirm so that views that differ converge. */
export const GroupConfirmation = z.object({
  v: z.literal(READY_TOPIC_VERSION),
  type: z.literal('allreduce-group'),
  job: JobId,
  round: Round,
  /** Retries of a round whose group failed to form count up from 0, so a retry never meets the stale views of an earlier try. */
  attempt: z.number().int().nonnegative().max(1_000_000).default(0),
  peerId: PeerIdString,
  members: z.array(PeerIdString).min(1).max(MAX_GROUP_SIZE),
  at: z.number().int().nonnegative()
}).strict()
export type GroupConfirmation = z.infer<typeof GroupConfirmation>

export const ReadyTopicMessage = z.discriminatedUnion('type', [ReadyAnnouncement, GroupConfirmation])
export type ReadyTopicMessage = z.infer<typeof ReadyTopicMessage>

export function encodeReadyMessage (message: z.input<typeof ReadyTopicMessage>): Uint8Array {
  return encodeJson(message)
}

/**
 * Parses a message received on a ready topic from the signed gossip author `from`: schema, size, that
 * the job belongs on this topic, and that the message speaks only for its author.
 */
export function parseReadyMessage (topic: string, data: Uint8Array, from: string): ReadyTopicMessage {
  const parsed = parseJobTopic(topic)
  if (parsed?.kind !== 'ready' || parsed.version !== READY_TOPIC_VERSION) throw new InvalidMessageError(`not a ready topic: ${topic}`)
  const message = decodeJson(ReadyTopicMessage, data, MAX_READY_MESSAGE_BYTES, `gossip on ${topic}`)
  if (message.job !== parsed.job) throw new InvalidMessageError(`gossip on ${topic}: job ${message.job} does not belong on this topic`)
  if (message.peerId !== from) throw new InvalidMessageError(`gossip on ${topic}: message speaks for ${message.peerId} but was authored by ${from}`)
  if (message.type === 'allreduce-group') {
    if (new Set(message.members).size !== message.members.length) throw new InvalidMessageError(`gossip on ${topic}: duplicate group members`)
    if (!message.members.includes(message.peerId)) throw new InvalidMessageError(`gossip on ${topic}: confirmation from a peer outside its own group`)
  }
  return message
}

/** Canonical order of a group: by peer id string. Every member derives the same order. */
export function canonicalOrder (peers: Iterable<string>): string[] {
  return [...new Set(peers)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}

/** Identifies a group: members that disagree on it refuse each other's frames instead of mixing rounds. */
export function groupHash (job: string, round: number, members: readonly string[], vectorLength: number, attempt = 0): string {
  const parts: unknown[] = ['nearai-allreduce-group', ALLREDUCE_WIRE_VERSION, job, round, vectorLength, canonicalOrder(members)]
  if (attempt > 0) parts.push(attempt)
  const text = JSON.stringify(parts)
  return bytesToHex(sha256(new TextEncoder().encode(text)))
}

// ---------------------------------------------------------------------------------------------------
// Stream frames

const FrameCommon = {
  v: z.literal(ALLREDUCE_WIRE_VERSION),
  job: JobId,
  round: Round,
  group: Sha256Hex,
  part: z.number().int().nonnegative().max(MAX_GROUP_SIZE - 1),
  offset: z.number().int().nonnegative().max(MAX_VECTOR_LENGTH),
  elements: z.number().int().nonnegative().max(MAX_VECTOR_LENGTH)
}

/** A member's contribution to one part, sent to that part's reducer (or to its stand-in). */
export const ContributeHeader = z.object({
  ...FrameCommon,
  type: z.literal('contribute'),
  from: PeerIdString,
  weight: Weight,
  /** True when sent to a stand-in because the part's own reducer failed. */
  standIn: z.boolean()
}).strict()
export type ContributeHeader = z.infer<typeof ContributeHeader>

/** The reduced part, sent by its reducer to every member that contributed. */
export const ResultHeader = z.object({
  ...FrameCommon,
  type: z.literal('result'),
  reducer: PeerIdString,
  /**
   * Who is in this part's result and with what weight, in canonical order; `digest` is the SHA-256 of the
   * contribution payload the reducer combined (what an auditor recomputes the part from).
   */
  contributors: z.array(z.object({ peer: PeerIdString, weight: Weight, digest: Sha256Hex.optional() }).strict()).min(1).max(MAX_GROUP_SIZE),
  /** Rule-specific facts about the reduction (e.g. how many values a trimmed mean dropped). */
  meta: z.record(z.string().max(64), z.union([z.number().finite(), z.string().max(256), z.boolean()])).optional()
}).strict()
export type ResultHeader = z.infer<typeof ResultHeader>

export const RejectReason = z.enum(['group-mismatch', 'invalid', 'duplicate', 'no-session', 'unavailable', 'excluded'])
export type RejectReason = z.infer<typeof RejectReason>

/** A reducer refusing a contribution; the sender treats the reducer as unavailable for this part. */
export const RejectHeader = z.object({
  ...FrameCommon,
  type: z.literal('reject'),
  reason: RejectReason,
  message: z.string().max(512)
}).strict()
export type RejectHeader = z.infer<typeof RejectHeader>

/** The reducer takes the contribution announced by the header: the member may send its payload. */
export const AcceptHeader = z.object({
  ...FrameCommon,
  type: z.literal('accept')
}).strict()
export type AcceptHeader = z.infer<typeof AcceptHeader>

/** The reducer is alive and still collecting the part: the member keeps waiting. */
export const WaitHeader = z.object({
  ...FrameCommon,
  type: z.literal('wait')
}).strict()
export type WaitHeader = z.infer<typeof WaitHeader>

// Reducer audits (node/allreduce/audit.ts), on ALLREDUCE_AUDIT_PROTOCOL streams.

/** An auditor asks a member for the contribution it sent to `part` (to recompute the part). Empty payload. */
export const AuditFetchHeader = z.object({
  ...FrameCommon,
  type: z.literal('audit-fetch')
}).strict()
export type AuditFetchHeader = z.infer<typeof AuditFetchHeader>

/** A member's answer to an audit-fetch: the contribution payload it sent to `part`, with its weight. */
export const AuditPayloadHeader = z.object({
  ...FrameCommon,
  type: z.literal('audit-payload'),
  weight: Weight
}).strict()
export type AuditPayloadHeader = z.infer<typeof AuditPayloadHeader>

/**
 * The auditor of `part` tells a member what it holds for the part's result: `result` is the SHA-256 of the
 * result payload (the recomputed one when it audited and found a lie). Empty payload. A member whose own
 * copy differs recomputes the part itself.
 */
export const VerdictHeader = z.object({
  ...FrameCommon,
  type: z.literal('verdict'),
  /** The member whose result the verdict is about. */
  reducer: PeerIdString,
  /** Whether the auditor recomputed the part (false: `result` is only the digest of the copy it received). */
  audited: z.boolean(),
  result: Sha256Hex,
  /** The auditor recomputed the part and the reducer's result differed. */
  fault: z.boolean()
}).strict()
export type VerdictHeader = z.infer<typeof VerdictHeader>

export const FrameHeader = z.discriminatedUnion('type', [ContributeHeader, AcceptHeader, WaitHeader, ResultHeader, RejectHeader, AuditFetchHeader, AuditPayloadHeader, VerdictHeader])
export type FrameHeader = z.infer<typeof FrameHeader>

export interface Frame<H extends FrameHeader = FrameHeader> {
  header: H
  payload: Uint8Array
}

/** Encodes a frame's header block: header length, header. */
export function encodeFrameHeader (header: FrameHeader): Uint8Array {
  const json = encodeJson(header)
  if (json.byteLength > MAX_FRAME_HEADER_BYTES) throw new MessageTooLargeError(`all-reduce frame header of ${json.byteLength} bytes exceeds ${MAX_FRAME_HEADER_BYTES}`)
  const out = new Uint8Array(4 + json.byteLength)
  new DataView(out.buffer).setUint32(0, json.byteLength)
  out.set(json, 4)
  return out
}

/** Encodes the u32 that announces a payload's length. */
export function encodePayloadLength (payloadLength: number): Uint8Array {
  if (!Number.isInteger(payloadLength) || payloadLength < 0 || payloadLength > 0xffffffff) throw new RangeError(`bad payload length ${payloadLength}`)
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, payloadLength)
  return out
}

/** Encodes the bytes before a frame's payload: header length, header, payload length. */
export function encodeFramePrefix (header: FrameHeader, payloadLength: number): Uint8Array {
  const head = encodeFrameHeader(header)
  const out = new Uint8Array(head.byteLength + 4)
  out.set(head, 0)
  out.set(encodePayloadLength(payloadLength), head.byteLength)
  return out
}

/** Encodes a whole frame into one buffer (small frames, tests); big payloads are better written after the prefix. */
export function encodeFrame (header: FrameHeader, payload: Uint8Array): Uint8Array {
  const prefix = encodeFramePrefix(header, payload.byteLength)
  const out = new Uint8Array(prefix.byteLength + payload.byteLength)
  out.set(prefix, 0)
  out.set(payload, prefix.byteLength)
  return out
}

/** Reads a u32 length announced by the wire and checks it against the bound the receiver chose. */
export function checkAnnouncedLength (length: number, max: number, what: string): number {
  if (length > max) throw new MessageTooLargeError(`${what}: announced ${length} bytes, the limit is ${max}`)
  return length
}

export function decodeFrameHeader (bytes: Uint8Array): FrameHeader {
  return decodeJson(FrameHeader, bytes, MAX_FRAME_HEADER_BYTES, 'all-reduce frame header')
}

/** What a receiver knows about the round, against which every frame is checked. */
export interface FrameContext {
  job: string
  round: number
  group: string
  /** Members in canonical order; part i is reduced by members[i]. */
  members: readonly string[]
  /** Part boundaries: part i covers [offsets[i], offsets[i] + lengths[i]). */
  offsets: readonly number[]
  lengths: readonly number[]
}

/**
 * Checks a frame header against the round it claims to belong to and the peer that actually sent it
 * (the connection's authenticated remote peer). Throws InvalidMessageError naming what is wrong.
 */
export function validateFrameHeader (header: FrameHeader, ctx: FrameContext, remotePeer: string): void {
  const what = `all-reduce ${header.type} frame from ${remotePeer}`
  if (header.job !== ctx.job || header.round !== ctx.round) throw new InvalidMessageError(`${what}: for ${header.job}#${header.round}, expected ${ctx.job}#${ctx.round}`)
  if (header.group !== ctx.group) throw new InvalidMessageError(`${what}: group ${header.group.slice(0, 12)} differs from ours ${ctx.group.slice(0, 12)}`, { reason: 'group-mismatch' })
  if (!ctx.members.includes(remotePeer)) throw new InvalidMessageError(`${what}: sender is not in the group`)
  if (header.part >= ctx.members.length) throw new InvalidMessageError(`${what}: part ${header.part} out of range`)
  if (header.offset !== ctx.offsets[header.part] || header.elements !== ctx.lengths[header.part]) {
    throw new InvalidMessageError(`${what}: part ${header.part} is [${header.offset}, +${header.elements}), expected [${ctx.offsets[header.part]}, +${ctx.lengths[header.part]})`)
  }
  if (header.type === 'contribute' && header.from !== remotePeer) throw new InvalidMessageError(`${what}: speaks for ${header.from}`)
  if (header.type === 'result') {
    // A member may relay a part result it holds (reduced by another member) to a peer that asked it to stand in.
    if (!ctx.members.includes(header.reducer)) throw new InvalidMessageError(`${what}: reducer ${header.reducer} is not in the group`)
    for (const c of header.contributors) {
      if (!ctx.members.includes(c.peer)) throw new InvalidMessageError(`${what}: contributor ${c.peer} is not in the group`)
    }
    if (new Set(header.contributors.map(c => c.peer)).size !== header.contributors.length) throw new InvalidMessageError(`${what}: duplicate contributors`)
  }
  if (header.type === 'verdict' && !ctx.members.includes(header.reducer)) throw new InvalidMessageError(`${what}: reducer ${header.reducer} is not in the group`)
}
