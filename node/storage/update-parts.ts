/**
 * Update parts on IPFS: each contribution payload this peer sent to a round's all-reduce, as one raw block whose
 * CID carries the payload's SHA-256 (protocol/update-parts.ts). A round's checkpoint lists those digests per
 * contributor (checkpoint.json `contributions[].update`), so a validator fetches a contributor's update exactly as
 * it entered the all-reduce by digest alone; Helia checks every block it receives against its CID. Bitswap serves
 * the blocks to any connected peer that asks: they are not provided on the DHT.
 *
 * A trainer keeps the parts of its newest few rounds only (UpdatePartsKeeper), so disk use stays bounded.
 */
import type { Helia } from '@helia/interface'
import type { CID } from 'multiformats/cid'
import { updatePartCid } from '../../protocol/update-parts.ts'
import { MAX_BLOCK_BYTES } from '../../protocol/shard-stream.ts'
import { fetchBlock, sha256Hex, withDeadline, type BoundedFetchOptions } from './fetch.ts'

/** How many of its newest rounds' update parts a trainer keeps, by default. */
export const DEFAULT_KEEP_UPDATE_ROUNDS = 4

export interface StoreUpdatePartsOptions {
  signal?: AbortSignal
}

/**
 * Stores each payload as a raw block and returns the CIDs, in payload order. The bytes are copied first (the
 * caller's buffers come from a pool and are reused after the round). A payload larger than bitswap moves in one
 * block (MAX_BLOCK_BYTES) is stored all the same, but no peer can fetch it over bitswap.
 */
export async function storeUpdateParts (helia: Helia, payloads: readonly Uint8Array[], opts: StoreUpdatePartsOptions = {}): Promise<CID[]> {
  const copies = payloads.map(p => p.slice())
  const cids: CID[] = []
  for (const bytes of copies) {
    const cid = updatePartCid(sha256Hex(bytes))
    await helia.blockstore.put(cid, bytes, { signal: opts.signal })
    cids.push(cid)
  }
  return cids
}

export interface UpdatePartsKeeperInit {
  /** The newest rounds whose parts are kept (default 4); older rounds' blocks are deleted unless pinned. */
  keepRounds?: number
}

/**
 * Stores this peer's update parts round after round and deletes those of rounds older than the newest
 * `keepRounds`. A block that was in the blockstore before (the same bytes stored for another reason), that a
 * kept round also stored, or that is pinned is never deleted.
 */
export class UpdatePartsKeeper {
  readonly keepRounds: number
  private readonly rounds = new Map<number, CID[]>()
  private queue: Promise<void> = Promise.resolve()

  constructor (private readonly helia: Helia, init: UpdatePartsKeeperInit = {}) {
    this.keepRounds = init.keepRounds ?? DEFAULT_KEEP_UPDATE_ROUNDS
    if (!Number.isInteger(this.keepRounds) || this.keepRounds < 1) throw new RangeError(`keepRounds must be a positive integer, got ${this.keepRounds}`)
  }

  /**
   * Stores `round`'s parts (copied before this returns, so the caller may reuse its buffers at once), then deletes
   * the parts of rounds that fell out of the newest `keepRounds`. Calls run one after another.
   */
  async store (round: number, payloads: readonly Uint8Array[], opts: StoreUpdatePartsOptions = {}): Promise<CID[]> {
    const copies = payloads.map(p => p.slice())
    const run = this.queue.then(async () => await this.storeCopies(round, copies, opts))
    this.queue = run.then(() => {}, () => {})
    return await run
  }

  private async storeCopies (round: number, copies: Uint8Array[], opts: StoreUpdatePartsOptions): Promise<CID[]> {
    const fresh: CID[] = []
    const all: CID[] = []
    for (const bytes of copies) {
      const cid = updatePartCid(sha256Hex(bytes))
      all.push(cid)
      if (this.owns(cid) || !await this.helia.blockstore.has(cid, { signal: opts.signal })) {
        await this.helia.blockstore.put(cid, bytes, { signal: opts.signal })
        fresh.push(cid)
      }
    }
    this.rounds.set(round, [...(this.rounds.get(round) ?? []), ...fresh])
    await this.prune(opts)
    return all
  }

  /** The rounds whose parts are held, oldest first. */
  heldRounds (): number[] {
    return [...this.rounds.keys()].sort((a, b) => a - b)
  }

  private owns (cid: CID): boolean {
    const key = cid.toString()
    for (const cids of this.rounds.values()) if (cids.some(c => c.toString() === key)) return true
    return false
  }

  private async prune (opts: StoreUpdatePartsOptions): Promise<void> {
    const held = this.heldRounds()
    const evicted = held.slice(0, Math.max(0, held.length - this.keepRounds))
    if (evicted.length === 0) return
    const kept = new Set(held.slice(evicted.length).flatMap(r => this.rounds.get(r) ?? []).map(c => c.toString()))
    for (const round of evicted) {
      const cids = this.rounds.get(round) ?? []
      this.rounds.delete(round)
      for (const cid of cids) {
        if (kept.has(cid.toString())) continue
        if (await this.helia.pins.isPinned(cid, { signal: opts.signal })) continue
        await this.helia.blockstore.delete(cid, { signal: opts.signal })
      }
    }
  }
}

export interface FetchUpdatePartOptions extends BoundedFetchOptions {
  /** The most bytes accepted (default: MAX_BLOCK_BYTES, the largest block bitswap moves). */
  maxBytes?: number
}

/**
 * Fetches the update part whose SHA-256 is `digestHex` (from the local blockstore, or any connected peer over
 * bitswap). Helia verifies the block against its CID, so the bytes returned hash to `digestHex`. Throws
 * InvalidUpdatePartError for a malformed digest, ContentTooLargeError past `maxBytes`, ContentNotFoundError
 * when nobody delivered it before the deadline (default 60 s), FetchTimeoutError when it started but did not finish.
 */
export async function fetchUpdatePart (helia: Helia, digestHex: string, opts: FetchUpdatePartOptions = {}): Promise<Uint8Array> {
  const cid = updatePartCid(digestHex)
  const maxBytes = opts.maxBytes ?? MAX_BLOCK_BYTES
  return await withDeadline(cid, opts, async (signal) => await fetchBlock(helia, cid, maxBytes, signal, opts.offline))
}
