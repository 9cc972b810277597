/**
 * The node's home folder: its identity key and its config file, plus the data of the node's parts
 * (blocks, datastore, chain) in subfolders. The identity key is an Ed25519 libp2p private key in its
 * protobuf encoding, readable by the owner only (0600), so the node keeps its PeerId across restarts.
 */
import { chmod, mkdir, open, readFile, stat, writeFile, rename } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { CONFIG_FILE } from './load.ts'
import { HomeError } from './errors.ts'

export const IDENTITY_FILE = 'identity.key'

export { HomeError }

export function defaultHome (env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.NEARAI_HOME ?? join(homedir(), '.nearai'))
}

/** Writes a file atomically (temp file, fsync, rename) so a crash never leaves it half-written. */
export async function writeFileAtomic (path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`
  const fh = await open(tmp, 'w', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
  // The rename itself must reach the disk too, or a crash can bring back the old name.
  const dir = await open(dirname(path), 'r')
  try { await dir.sync() } finally { await dir.close() }
}

export interface InitResult {
  home: string
  peerId: string
  created: boolean
}

/** Creates the home folder, identity key and default config file; an existing identity is never replaced. */
export async function initHome (home: string, defaultConfig: unknown = {}): Promise<InitResult> {
  await mkdir(home, { recursive: true, mode: 0o700 })
  const keyPath = join(home, IDENTITY_FILE)
  let created = false
  try {
    await stat(keyPath)
  } catch {
    const key = await generateKeyPair('Ed25519')
    await writeFileAtomic(keyPath, privateKeyToProtobuf(key), 0o600)
    created = true
  }
  const configPath = join(home, CONFIG_FILE)
  try {
    await stat(configPath)
  } catch {
    await writeFile(configPath, JSON.stringify(defaultConfig, null, 2) + '\n', { mode: 0o644 })
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
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new HomeError(`no identity key at ${keyPath}: run \`nearai init --home ${home}\` first`)
    }
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
