/** What a round session keeps for reducer audits (audit.ts): input digests, verdicts received, fetches served. */
import { createHash } from 'node:crypto'
import type { VerdictHeader } from '../../protocol/allreduce.ts'
import { Deferred } from './part-collector.ts'

/** SHA-256 of a payload, lowercase hex (node's native hash: about a millisecond per megabyte or less). */
export function payloadDigest (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

export interface ReceivedVerdict { from: string, header: VerdictHeader }

export class AuditState {
  /** SHA-256 of each contribution this peer received, by part, then by sender. */
  private readonly inputs = new Map<number, Map<string, string>>()
  /** SHA-256 of this peer's own contribution payloads, by part (computed once, when first needed). */
  private readonly own = new Map<number, string>()
  /** The verdict on each part from the part's auditor; settled early if it arrives before this peer audits. */
  readonly verdicts: Array<Deferred<ReceivedVerdict>>
  /** The digest of each part's result as this peer holds it (null: nobody reduced it), once it has it. */
  readonly held: Array<Deferred<string | null>>
  /** `requester#part` of the audit-fetches this peer answered: each at most once. */
  readonly served = new Set<string>()
  bytesSent = 0
  bytesReceived = 0

  constructor (parts: number) {
    this.verdicts = Array.from({ length: parts }, () => new Deferred<ReceivedVerdict>())
    this.held = Array.from({ length: parts }, () => new Deferred<string | null>())
  }

  noteInput (part: number, peer: string, payload: Uint8Array): void {
    const m = this.inputs.get(part) ?? new Map<string, string>()
    m.set(peer, payloadDigest(payload))
    this.inputs.set(part, m)
  }

  input (part: number, peer: string): string | undefined {
    return this.inputs.get(part)?.get(peer)
  }

  ownDigest (part: number, payload: () => Uint8Array): string {
    let d = this.own.get(part)
    if (d == null) { d = payloadDigest(payload()); this.own.set(part, d) }
    return d
  }
}
