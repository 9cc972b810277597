/**
 * An independent reference for kubo's default `ipfs add` (go-unixfs balanced builder): 256 KiB chunks,
 * each a dag-pb node holding a UnixFS `File` message; parents of at most 174 links built bottom up;
 * sha2-256 multihash; CIDv0 (base58btc). The protobufs are written by hand here: nothing from
 * ipfs-unixfs-importer, @ipld/dag-pb or ipfs-unixfs is used, so a bug there cannot hide here.
 */
import { createHash } from 'node:crypto'
import { base58btc } from 'multiformats/bases/base58'

const CHUNK = 256 * 1024
const MAX_LINKS = 174

function varint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) { out.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80) }
  out.push(n)
  return out
}

function field (tag: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag, ...varint(bytes.byteLength)]), bytes])
}

/** UnixFS Data { Type = File (2), Data?, filesize, blocksizes* } */
function unixfsFile (data: Uint8Array | null, filesize: number, blocksizes: number[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0x08, 0x02])]
  if (data != null) parts.push(field(0x12, data))
  parts.push(Buffer.from([0x18, ...varint(filesize)]))
  for (const b of blocksizes) parts.push(Buffer.from([0x20, ...varint(b)]))
  return Buffer.concat(parts)
}

interface Node { multihash: Buffer, tsize: number, filesize: number }

/** PBNode { Links (2)*, Data (1) } with PBLink { Hash (1), Name (2) = "", Tsize (3) }, links first. */
function pbNode (links: Node[], data: Buffer): Buffer {
  const encodedLinks = links.map(l => field(0x12, Buffer.concat([field(0x0a, l.multihash), Buffer.from([0x12, 0x00]), Buffer.from([0x18, ...varint(l.tsize)])])))
  return Buffer.concat([...encodedLinks, field(0x0a, data)])
}

function toNode (block: Buffer, childrenTsize: number, filesize: number): Node {
  const digest = createHash('sha256').update(block).digest()
  return { multihash: Buffer.concat([Buffer.from([0x12, 0x20]), digest]), tsize: block.byteLength + childrenTsize, filesize }
}

/** The CIDv0 string kubo's `ipfs add` (defaults) prints for `bytes`. */
export function kuboCidV0 (bytes: Uint8Array): string {
  let level: Node[] = []
  for (let at = 0; at < bytes.byteLength || at === 0; at += CHUNK) {
    const chunk = bytes.subarray(at, Math.min(bytes.byteLength, at + CHUNK))
    level.push(toNode(pbNode([], unixfsFile(chunk, chunk.byteLength, [])), 0, chunk.byteLength))
    if (bytes.byteLength === 0) break
  }
  while (level.length > 1) {
    const next: Node[] = []
    for (let i = 0; i < level.length; i += MAX_LINKS) {
      const children = level.slice(i, i + MAX_LINKS)
      const filesize = children.reduce((s, c) => s + c.filesize, 0)
      const block = pbNode(children, unixfsFile(null, filesize, children.map(c => c.filesize)))
      next.push(toNode(block, children.reduce((s, c) => s + c.tsize, 0), filesize))
    }
    level = next
  }
  // CIDv0 is the bare multihash in base58btc, without the multibase prefix.
  return base58btc.encode(level[0].multihash).slice(1)
}
