/**
 * The home's content without a network: Helia over the blocks and datastore a node keeps under
 * `<home>/data` (the same folders `node/network/host.ts` uses), with no libp2p, no block brokers and no
 * routers. Commands that only read or write the home (list, show, unpin, import a CAR) use it, and every
 * command tries it first: a read of a block that is not in the home fails at once (`isNotLocal`), and only
 * then is a network node started. Opening it takes milliseconds; starting libp2p takes seconds.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Helia, HeliaInit } from 'helia'

export interface HomeStore {
  helia: Helia
  close: () => Promise<void>
}

/** The folder a node keeps its blocks and datastore in (`PeerNode`'s `dataDir`). */
export function homeDataDir (home: string): string {
  return join(home, 'data')
}

/**
 * `createHeliaLight` without loading the rest of the `helia` package: its entry point also imports the
 * libp2p, bitswap and HTTP front ends (libp2p itself), about 5 s of a `nearai dataset ls` on a busy 2-core
 * machine against 1 s for the Helia class alone. Falls back to the entry point if the layout changes.
 */
async function createLightHelia (init: HeliaInit): Promise<Helia> {
  try {
    const dist = dirname(createRequire(import.meta.url).resolve('helia'))
    const [{ Helia: HeliaClass }, { name, version }] = await Promise.all([
      import(pathToFileURL(join(dist, 'helia.js')).href),
      import(pathToFileURL(join(dist, 'version.js')).href)
    ]) as [{ Helia: new (init: HeliaInit & { name: string, version: string }) => Helia }, { name: string, version: string }]
    return new HeliaClass({ name, version, ...init })
  } catch {
    return (await import('helia')).createHeliaLight(init)
  }
}

export async function openHomeStore (home: string): Promise<HomeStore> {
  // Loaded on first use: a command that fails on its arguments should not pay for importing Helia.
  const [{ FsBlockstore }, { FsDatastore }, dagCbor] = await Promise.all([
    import('blockstore-fs'), import('datastore-fs'), import('@ipld/dag-cbor')
  ])
  const dir = homeDataDir(home)
  const blockstore = new FsBlockstore(join(dir, 'blocks'))
  const datastore = new FsDatastore(join(dir, 'datastore'))
  await blockstore.open()
  await datastore.open()
  let helia: Helia
  try {
    helia = await createLightHelia({ blockstore, datastore, codecs: [dagCbor] })
    await helia.start()
  } catch (err) {
    await blockstore.close()
    await datastore.close()
    throw err
  }
  return {
    helia,
    close: async () => {
      await helia.stop()
      await blockstore.close()
      await datastore.close()
    }
  }
}

/**
 * True when `err` says a block is not in the home store (it would have to come from the network): Helia's
 * offline miss, or the "no block brokers" of a Helia that has no network at all, anywhere in the cause chain.
 */
export function isNotLocal (err: unknown): boolean {
  for (let e = err as { name?: unknown, message?: unknown, cause?: unknown } | undefined, depth = 0; e != null && depth < 8; e = e.cause as typeof e, depth++) {
    if (e.name === 'BlockNotFoundWhileOfflineError') return true
    if (e.name === 'InvalidConfigurationError' && typeof e.message === 'string' && e.message.includes('block brokers')) return true
  }
  return false
}
