import type { Command } from 'commander'
import { configLeaves, envName } from '../../config/load.ts'
import { commandContext } from '../context.ts'
import { outputFor, withJsonFlag } from '../output.ts'

export function registerConfig (program: Command): void {
  const config = program.command('config').description('inspect the node\'s configuration')
  withJsonFlag(config.command('show')
    .description('print the effective configuration (defaults < <home>/config.json < NEARAI_* environment < flags) as JSON')
    .option('--env-names', 'list the environment variable that sets each field instead'))
    .action(async (opts: { envNames?: boolean, json?: boolean }, cmd: Command) => {
      const out = outputFor(opts)
      if (opts.envNames === true) {
        const leaves = configLeaves().map(({ path }) => ({ field: path.join('.'), env: envName(path) }))
        out.result(Object.fromEntries(leaves.map(l => [l.field, l.env])), leaves.map(l => `${l.env.padEnd(44)} ${l.field}`))
        return
      }
      const { config: effective } = await commandContext(cmd)
      // The configuration is JSON either way: --json is accepted for symmetry with the other commands.
      out.result(effective, JSON.stringify(effective, null, 2))
    })
}
