/**
 * How bytes become UnixFS DAGs. Two settings: this network's default, the `unixfs-v1-2025` profile
 * (CIDv1, raw leaves, 1 MiB chunks, 1024 links a node: fewer, larger blocks, each well under bitswap's
 * 2 MiB message cap), and kubo's default `ipfs add` (the `unixfs-v0-2015` profile: CIDv0, dag-pb leaves,
 * 256 KiB fixed-size chunks, balanced layout of at most 174 links a node), so that the same bytes added
 * with kubo get the same CID.
 */
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import type { AddFileOptions } from '@helia/unixfs'

export const KUBO_CHUNK_BYTES = 256 * 1024
export const KUBO_MAX_LINKS = 174

export function unixfsImportOptions (kuboCompatible = false): AddFileOptions {
  if (kuboCompatible) {
    return {
      profile: 'unixfs-v0-2015',
      cidVersion: 0,
      rawLeaves: false,
      reduceSingleLeafToSelf: true,
      chunker: fixedSize({ chunkSize: KUBO_CHUNK_BYTES }),
      layout: balanced({ maxChildrenPerNode: KUBO_MAX_LINKS })
    }
  }
  return { profile: 'unixfs-v1-2025', cidVersion: 1, rawLeaves: true }
}
