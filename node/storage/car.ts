/**
 * CAR files (Content Addressed aRchives): the format IPFS pinning services accept. Export walks the whole
 * DAG under a root (a dataset manifest takes its shards along); import verifies every block against its
 * CID before storing it, since a CAR file is untrusted input, then pins the root.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { car } from '@helia/car'
import type { Helia } from '@helia/interface'
import { CarBlockIterator } from '@ipld/car/iterator'
import { CID } from 'multiformats/cid'
import { CustomProgressEvent, type ProgressEvent, type ProgressOptions } from 'progress-events'
import { HashMismatchError, InvalidContentError } from './errors.ts'
import { withDeadline, type BoundedFetchOptions } from './fetch.ts'
import { pinDag } from './pins.ts'

export type CarProgressEvents = ProgressEvent<'nearai:car:bytes', { bytes: number }>

export interface ExportCarOptions extends BoundedFetchOptions, ProgressOptions<CarProgressEvents> {}

/** Writes the DAG under `cid` to `outPath` as a CARv1 with `cid` as its one root. */
export async function exportCar (helia: Helia, cid: CID, outPath: string, opts: ExportCarOptions = {}): Promise<{ bytes: number }> {
  return await withDeadline(cid, opts, async (signal, state) => {
    const out = createWriteStream(outPath)
    let bytes = 0
    try {
      for await (const chunk of car(helia as any).export(cid, { signal, offline: opts.offline })) {
        bytes += chunk.byteLength
        state.received += chunk.byteLength
        if (!out.write(chunk)) await once(out, 'drain', { signal })
        opts.onProgress?.(new CustomProgressEvent('nearai:car:bytes', { bytes }))
      }
    } finally {
      out.end()
      await once(out, 'close')
    }
    return { bytes }
  })
}

export interface ImportCarOptions extends ProgressOptions<CarProgressEvents> {
  signal?: AbortSignal
  /** Pin the root (default true). */
  pin?: boolean
}

/** Imports a CAR file; returns its root CID (pinned unless `pin: false`). */
export async function importCar (helia: Helia, carPath: string, opts: ImportCarOptions = {}): Promise<{ root: CID, blocks: number, bytes: number }> {
  const iterator = await CarBlockIterator.fromIterable(createReadStream(carPath, { signal: opts.signal }) as AsyncIterable<Uint8Array>)
  const roots = await iterator.getRoots()
  if (roots.length !== 1) throw new InvalidContentError(carPath, `${carPath}: expected one root, the CAR has ${roots.length}`)
  const root = CID.asCID(roots[0]) ?? CID.decode(roots[0].bytes)
  let blocks = 0
  let bytes = 0
  for await (const block of iterator) {
    opts.signal?.throwIfAborted()
    const cid = CID.decode(block.cid.bytes)
    const hasher = await helia.getHasher(cid.multihash.code)
    const digest = await hasher.digest(block.bytes)
    if (Buffer.compare(digest.digest, cid.multihash.digest) !== 0) {
      throw new HashMismatchError(cid, `${carPath}: block ${cid.toString()} does not match its CID`, Buffer.from(cid.multihash.digest).toString('hex'), Buffer.from(digest.digest).toString('hex'))
    }
    await helia.blockstore.put(cid, block.bytes, { signal: opts.signal })
    blocks++
    bytes += block.bytes.byteLength
    opts.onProgress?.(new CustomProgressEvent('nearai:car:bytes', { bytes }))
  }
  if (opts.pin !== false) {
    // Everything should be in the file: pin offline, so a partial CAR fails instead of hanging on the network.
    await pinDag(helia, root, { signal: opts.signal, offline: true, metadata: { kind: 'car' } }).catch(err => {
      throw new InvalidContentError(root, `${carPath}: the CAR does not hold the whole DAG under ${root.toString()} (${(err as Error).message})`, { cause: err })
    })
  }
  return { root, blocks, bytes }
}
