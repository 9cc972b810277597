import { Option, type Command } from 'commander'
import { commandContext } from '../context.ts'
import { parseCid, timeoutSeconds } from '../arg-parsers.ts'
import { formatBytes } from '../progress.ts'
import { outputFor, withJsonFlag } from '../output.ts'
import { localFirst, withHomeSession } from '../../peer/with-node.ts'

const pins = async (): Promise<typeof import('../../storage/pins.ts')> => await import('../../storage/pins.ts')

export function registerPin (program: Command): void {
  const pin = program.command('pin').description('keep content on this node (pinned content survives garbage collection and restarts)')
  withJsonFlag(pin.command('add <cid>')
    .description('pin a whole DAG (e.g. a dataset manifest and its shards), fetching what is not in this home')
    .addOption(new Option('--timeout <seconds>', 'give up fetching after this long').default(300_000, '300').argParser(timeoutSeconds)))
    .action(async (cidText: string, opts: { timeout: number, json?: boolean }, cmd: Command) => {
      const cid = parseCid(cidText)
      const ctx = await commandContext(cmd)
      const r = await withHomeSession(ctx, 'nearai pin add', async (session) =>
        await localFirst(session, cid.toString(), async ({ helia, offline }) => await (await pins()).pinAdd(helia, cid, { timeoutMs: opts.timeout, offline })))
      outputFor(opts).result({ cid, pinned: true, alreadyPinned: r.alreadyPinned, bytes: r.bytes },
        `${r.alreadyPinned ? 'already pinned' : 'pinned'} ${cid.toString()} (${formatBytes(r.bytes)})`)
    })
  withJsonFlag(pin.command('rm <cid>')
    .description('unpin; the blocks go at the next garbage collection unless pinned elsewhere'))
    .action(async (cidText: string, opts: { json?: boolean }, cmd: Command) => {
      const cid = parseCid(cidText)
      const ctx = await commandContext(cmd)
      await withHomeSession(ctx, 'nearai pin rm', async (session) => { await (await pins()).pinRm(await session.local(), cid) })
      outputFor(opts).result({ cid, pinned: false }, `unpinned ${cid.toString()}`)
    })
  withJsonFlag(pin.command('ls')
    .description('list pinned roots'))
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd)
      const list = await withHomeSession(ctx, 'nearai pin ls', async (session) => await (await pins()).pinLs(await session.local()))
      outputFor(opts).result({ pins: list.map(p => ({ cid: p.cid, recursive: p.depth === Infinity, depth: p.depth === Infinity ? null : p.depth, metadata: p.metadata })) },
        list.map(p => `${p.cid.toString()}\t${p.depth === Infinity ? 'recursive' : `depth ${p.depth}`}\t${JSON.stringify(p.metadata)}`))
    })
}
