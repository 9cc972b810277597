/**
 * The node's home folder: its identity key and its config file, plus the data of the node's parts
 * (blocks, datastore, chain) in subfolders. The identity key is an Ed25519 libp2p private key in its
 * protobuf encoding, readable by the owner only (0600), so the node keeps its PeerId across restarts.
 */
import { chmod, mkdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { CONFIG_FILE } from './load.ts'
import { HomeError } from './errors.ts'
import { IDENTITY_FILE, defaultHome } from './home-layout.ts'
import { writeFileAtomic } from './durable-file.ts'

export { IDENTITY_FILE }

export { HomeError }

export { defaultHome }

export { writeFileAtomic }

export interface InitResult {
  home: string
  peerId: string
  created: boolean
}

/** Creates the home folder, identity key and default config file; an existing identity is never replaced. */
export async function initHome (home: string, defaultConfig: unknown = {}): Promise<InitResult> {
  try {
    await mkdir(home, { recursive: true, mode: 0o700 })
  } catch (err) {
    throw new HomeError(`cannot create the home ${home}: ${fsReason(err)}`)
  }
  const keyPath = join(home, IDENTITY_FILE)
  let created = false
  try {
    await stat(keyPath)
  } catch {
    const key = await generateKeyPair('Ed25519')
    try {
      await writeFileAtomic(keyPath, privateKeyToProtobuf(key), 0o600, { exclusive: true })
      created = true
    } catch (err) {
      // Another init wrote one first: the identity that exists is the home's, never replaced.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
  }
  const configPath = join(home, CONFIG_FILE)
  try {
    await stat(configPath)
  } catch {
    await writeFileAtomic(configPath, JSON.stringify(defaultConfig, null, 2) + '\n', 0o644, { exclusive: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err // one written meanwhile is the user's: kept
    })
  }
  const key = await loadIdentity(home)
  return { home, peerId: peerIdFromPrivateKey(key).toString(), created }
}

export async function loadIdentity (home: string): Promise<PrivateKey> {
  const keyPath = join(home, IDENTITY_FILE)
  let bytes: Uint8Array
  try {
    bytes = await readFile(keyPath)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      throw new HomeError(`no identity key at ${keyPath}: run \`nearai init --home ${home}\` first`)
    }
    if (code === 'ENOTDIR') throw new HomeError(`the home ${home} is not a folder (give --home a folder, or run \`nearai init --home <folder>\`)`)
    if (code === 'EACCES') throw new HomeError(`cannot read the identity key at ${keyPath}: permission denied`)
    throw err
  }
  const mode = (await stat(keyPath)).mode & 0o777
  if ((mode & 0o077) !== 0) {
    // Tighten rather than refuse: the key is still ours, but it must not stay readable by others.
    await chmod(keyPath, 0o600)
  }
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new HomeError(`identity key at ${keyPath} is unreadable: ${(err as Error).message}`)
  }
}

/** Why a file operation failed, in words (the code's meaning, not Node's "ENOTDIR: not a directory, mkdir ..."). */
export function fsReason (err: unknown): string {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOTDIR': return 'a part of the path is a file, not a folder'
    case 'EEXIST': return 'a file of that name is in the way'
    case 'EACCES': case 'EPERM': return 'permission denied'
    case 'EROFS': return 'read-only file system'
    case 'ENOSPC': return 'no space left on the device'
    case 'ENOENT': return 'no such file or folder'
    case 'EISDIR': return 'it is a folder'
    default: return (err as Error).message.split('\n')[0]
  }
}
