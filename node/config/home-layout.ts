/**
 * Where things live in a node's home, and the cheap check that a folder is one: commands that only read
 * the home's store need not load libp2p's crypto to parse the key (the network node does, when it starts).
 */
import { stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { HomeError } from './errors.ts'

export const IDENTITY_FILE = 'identity.key'

export function defaultHome (env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.NEARAI_HOME ?? join(homedir(), '.nearai'))
}

/** Throws HomeError unless `home` is a folder holding an identity key (as `nearai init` makes it). */
export async function requireInitialisedHome (home: string): Promise<void> {
  const keyPath = join(home, IDENTITY_FILE)
  try {
    await stat(keyPath)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOTDIR') throw new HomeError(`the home ${home} is not a folder (give --home a folder, or run \`nearai init --home <folder>\`)`)
    if (code === 'EACCES') throw new HomeError(`cannot read the identity key at ${keyPath}: permission denied`)
    throw new HomeError(`no identity key at ${keyPath}: run \`nearai init --home ${home}\` first`)
  }
}
