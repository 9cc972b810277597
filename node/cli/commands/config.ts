import type { Command } from 'commander'
import { configLeaves, envName } from '../../config/load.ts'
import { commandContext } from '../context.ts'

export function registerConfig (program: Command): void {
  const config = program.command('config').description('inspect the node\'s configuration')
  config.command('show')
    .description('print the effective configuration (defaults < <home>/config.json < NEARAI_* environment < flags) as JSON')
    .option('--env-names', 'list the environment variable that sets each field instead')
    .action(async (opts: { envNames?: boolean }, cmd: Command) => {
      if (opts.envNames === true) {
        for (const { path } of configLeaves()) process.stdout.write(`${envName(path).padEnd(44)} ${path.join('.')}\n`)
        return
      }
      const { config: effective } = await commandContext(cmd)
      process.stdout.write(JSON.stringify(effective, null, 2) + '\n')
    })
}
