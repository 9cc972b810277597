/** The links of a UnixFS block (dag-pb node or raw leaf), decoded with the node's own codecs. */
import type { Helia } from '@helia/interface'
import { createUnsafe } from 'multiformats/block'
import type { CID } from 'multiformats/cid'
import { RAW_CODE } from '../../../protocol/shard-stream.ts'

export type LinkDecoder = (cid: CID, bytes: Uint8Array) => Promise<CID[]>

export function linkDecoder (helia: Pick<Helia, 'getCodec'>): LinkDecoder {
  return async (cid, bytes) => {
    if (cid.code === RAW_CODE) return []
    const codec = await helia.getCodec(cid.code)
    const block = createUnsafe({ bytes, cid, codec })
    const out: CID[] = []
    for (const [, link] of block.links()) out.push(link as CID)
    return out
  }
}
