import { Option, type Command } from 'commander'
import { commandContext } from '../context.ts'
import { int } from './network-flags.ts'
import { parseCid } from './dataset.ts'
import { formatBytes } from '../progress.ts'
import { withHomeNode } from '../../peer/with-node.ts'
import { pinAdd, pinLs, pinRm } from '../../storage/pins.ts'

export function registerPin (program: Command): void {
  const pin = program.command('pin').description('keep content on this node (pinned content survives garbage collection and restarts)')
  pin.command('add <cid>')
    .description('fetch a whole DAG (e.g. a dataset manifest and its shards) and pin it')
    .addOption(new Option('--timeout <seconds>', 'give up after this long').default(300_000, '300').argParser((v: string) => int(v) * 1000))
    .action(async (cidText: string, opts: { timeout: number }, cmd: Command) => {
      const cid = parseCid(cidText)
      const ctx = await commandContext(cmd)
      await withHomeNode(ctx, 'nearai pin add', async (node) => {
        const r = await pinAdd(node.helia, cid, { timeoutMs: opts.timeout })
        process.stdout.write(`${r.alreadyPinned ? 'already pinned' : 'pinned'} ${cid.toString()} (${formatBytes(r.bytes)})\n`)
      })
    })
  pin.command('rm <cid>')
    .description('unpin; the blocks go at the next garbage collection unless pinned elsewhere')
    .action(async (cidText: string, _opts, cmd: Command) => {
      const cid = parseCid(cidText)
      const ctx = await commandContext(cmd)
      await withHomeNode(ctx, 'nearai pin rm', async (node) => {
        await pinRm(node.helia, cid)
        process.stdout.write(`unpinned ${cid.toString()}\n`)
      })
    })
  pin.command('ls')
    .description('list pinned roots')
    .action(async (_opts, cmd: Command) => {
      const ctx = await commandContext(cmd)
      await withHomeNode(ctx, 'nearai pin ls', async (node) => {
        for (const p of await pinLs(node.helia)) process.stdout.write(`${p.cid.toString()}\t${p.depth === Infinity ? 'recursive' : `depth ${p.depth}`}\t${JSON.stringify(p.metadata)}\n`)
      })
    })
}
