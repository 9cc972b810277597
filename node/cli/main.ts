/**
 * `nearai`: the one command-line program of a NearAI node. A thin shell: each subcommand parses its flags,
 * builds the context (home, configuration, logger) and calls library functions that tests call directly.
 */
import { Command, Option } from 'commander'
import { registerInit } from './commands/init.ts'
import { registerConfig } from './commands/config.ts'
import { registerNode } from './commands/node.ts'
import { registerBootstrap } from './commands/bootstrap.ts'
import { registerDataset } from './commands/dataset.ts'
import { registerPin } from './commands/pin.ts'
import { registerDemo } from './commands/demo.ts'
import { registerChain } from './commands/chain.ts'
import { registerJob } from './commands/job.ts'
import { registerValidator } from './commands/validator.ts'

export function buildProgram (): Command {
  const program = new Command('nearai')
    .description('NearAI: train AI models together on an open peer-to-peer network (libp2p, IPFS, NEAR)')
    .version('0.1.0')
    .option('--home <dir>', 'the node\'s home folder (identity, config, data)', process.env.NEARAI_HOME)
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']))
    .addOption(new Option('--log-format <format>', 'log format: pretty on a terminal, json for collectors').choices(['auto', 'pretty', 'json']))
    .showHelpAfterError()
  registerInit(program)
  registerConfig(program)
  registerNode(program)
  registerBootstrap(program)
  registerDataset(program)
  registerPin(program)
  registerDemo(program)
  registerChain(program)
  registerJob(program)
  registerValidator(program)
  return program
}

// A closed pipe (`nearai config show | head`) is a normal way for a reader to stop, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(0); throw err })

try {
  await buildProgram().parseAsync(process.argv)
} catch (err) {
  process.stderr.write(`nearai: ${(err as Error).message}\n`)
  process.exitCode = 1
}
