/**
 * Walking a DAG held locally (or fetched on the way), whatever its codec: dag-pb (UnixFS), raw and
 * dag-cbor (manifests). Used to size pinned content and to provide every block of a dataset.
 */
import type { Helia } from '@helia/interface'
import { createUnsafe } from 'multiformats/block'
import type { CID } from 'multiformats/cid'

export interface DagWalkOptions {
  signal?: AbortSignal
  offline?: boolean
}

/** Yields every distinct block reachable from `root` with its bytes, root first (breadth-first). */
export async function * walkDagBlocks (helia: Helia, root: CID, opts: DagWalkOptions = {}): AsyncGenerator<{ cid: CID, bytes: Uint8Array }> {
  const seen = new Set<string>()
  const queue: CID[] = [root]
  for (let next = 0; next < queue.length; next++) {
    const cid = queue[next]
    const key = cid.toString()
    if (seen.has(key)) continue
    seen.add(key)
    const chunks: Uint8Array[] = []
    for await (const chunk of helia.blockstore.get(cid, { signal: opts.signal, offline: opts.offline })) chunks.push(chunk)
    const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
    yield { cid, bytes }
    if (cid.code === 0x55) continue // raw leaves have no links
    const codec = await helia.getCodec(cid.code)
    const block = createUnsafe({ bytes, cid, codec })
    for (const [, link] of block.links()) queue.push(link as CID)
  }
}

/** Yields every distinct block reachable from `root` with its size, root first. */
export async function * walkDag (helia: Helia, root: CID, opts: DagWalkOptions = {}): AsyncGenerator<{ cid: CID, bytes: number }> {
  for await (const { cid, bytes } of walkDagBlocks(helia, root, opts)) yield { cid, bytes: bytes.byteLength }
}

/** Total bytes of the blocks of a DAG (each distinct block once). */
export async function dagSize (helia: Helia, root: CID, opts: DagWalkOptions = {}): Promise<number> {
  let total = 0
  for await (const { bytes } of walkDag(helia, root, opts)) total += bytes
  return total
}
