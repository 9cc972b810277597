/**
 * `nearai`: the one command-line program of a NearAI node. A thin shell: each subcommand parses its flags,
 * builds the context (home, configuration, logger) and calls library functions that tests call directly.
 *
 * Only the command group named on the command line is loaded (the others are listed by name for --help):
 * loading every group means loading libp2p, Helia, TensorFlow.js and the chain client, seconds before a
 * command can even say that an argument is wrong. Errors end in one line on stderr and a non-zero exit.
 */
import { Command, Option } from 'commander'
import { describeError } from './errors.ts'

interface Group {
  name: string
  description: string
  load: () => Promise<(program: Command) => void>
}

const GROUPS: Group[] = [
  { name: 'init', description: 'create the node\'s home: its libp2p identity key and a config file', load: async () => (await import('./commands/init.ts')).registerInit },
  { name: 'config', description: 'inspect the node\'s configuration', load: async () => (await import('./commands/config.ts')).registerConfig },
  { name: 'node', description: 'run a peer node', load: async () => (await import('./commands/node.ts')).registerNode },
  { name: 'bootstrap', description: 'operate a bootstrap node (DHT server, relay, pinning; no training)', load: async () => (await import('./commands/bootstrap.ts')).registerBootstrap },
  { name: 'dataset', description: 'public datasets on IPFS: add, show, fetch, list, export', load: async () => (await import('./commands/dataset.ts')).registerDataset },
  { name: 'pin', description: 'keep content on this node (pinned content survives garbage collection and restarts)', load: async () => (await import('./commands/pin.ts')).registerPin },
  { name: 'job', description: 'training jobs on this node', load: async () => (await import('./commands/job.ts')).registerJob },
  { name: 'checkpoint', description: 'model checkpoints on IPFS, anchored on chain', load: async () => (await import('./commands/chain.ts')).registerChain },
  { name: 'chain', description: 'the ledger: the embedded NEAR-compatible dev chain', load: async () => (await import('./commands/chain.ts')).registerChain },
  { name: 'dao', description: 'the DAO: its token and the proposals and votes that start jobs, pay from the treasury or change parameters', load: async () => (await import('./commands/dao.ts')).registerDao },
  { name: 'rewards', description: 'contribution rewards: what this peer earned per final round, and claiming them', load: async () => (await import('./commands/rewards.ts')).registerRewards },
  { name: 'validator', description: 'validate jobs: check and attest their checkpoints on chain without training', load: async () => (await import('./commands/validator.ts')).registerValidator },
  { name: 'demo', description: 'run a whole NearAI network on 127.0.0.1 and train an MNIST model together', load: async () => (await import('./commands/demo.ts')).registerDemo }
]

/** Global options that take a value (so that the value is not mistaken for the command). */
const GLOBAL_VALUE_OPTIONS = new Set(['--home', '--log-level', '--log-format'])

/** The command group named in `args` (the first word that is not a global option or its value). */
export function groupNamed (args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (arg === '--') return args[i + 1]
    if (arg.startsWith('-')) {
      if (GLOBAL_VALUE_OPTIONS.has(arg)) i++
      continue
    }
    return arg
  }
  return undefined
}

export async function buildProgram (args: string[] = process.argv.slice(2)): Promise<Command> {
  const program = new Command('nearai')
    .description('NearAI: train AI models together on an open peer-to-peer network (libp2p, IPFS, NEAR)')
    .version('0.1.0')
    .option('--home <dir>', 'the node\'s home folder (identity, config, data)', process.env.NEARAI_HOME)
    .addOption(new Option('--log-level <level>', 'log level').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']))
    .addOption(new Option('--log-format <format>', 'log format: pretty on a terminal, json for collectors').choices(['auto', 'pretty', 'json']))
  const named = groupNamed(args)
  const selected = GROUPS.filter(g => g.name === named)
  // `nearai help <group>` and unknown words load everything, so that help and suggestions are complete.
  const toLoad = selected.length > 0 ? selected : named == null ? [] : GROUPS
  const registered = new Set<(program: Command) => void>()
  for (const group of toLoad) {
    const register = await group.load()
    if (!registered.has(register)) register(program) // `chain` and `checkpoint` share a module
    registered.add(register)
  }
  for (const group of GROUPS) {
    if (!program.commands.some(c => c.name() === group.name)) program.command(group.name).description(group.description)
  }
  oneLineErrors(program)
  return program
}

/**
 * Commander's own errors (unknown option, missing argument, bad value) as one line that names the command
 * and where its help is, instead of the message followed by the whole help text.
 */
function oneLineErrors (cmd: Command, path: string[] = []): void {
  const here = path.length > 0 ? `nearai ${path.join(' ')}` : 'nearai'
  cmd.configureOutput({
    outputError: (text, write) => { write(`${here}: ${text.trim().replace(/^error: /, '')} (see \`${here} --help\`)\n`) }
  })
  for (const sub of cmd.commands) oneLineErrors(sub, [...path, sub.name()])
}

// A closed pipe (`nearai config show | head`) is a normal way for a reader to stop, not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(0); throw err })

try {
  const program = await buildProgram()
  await program.parseAsync(process.argv)
} catch (err) {
  process.stderr.write(describeError(err, process.env.NEARAI_DEBUG != null) + '\n')
  process.exitCode = 1
  // Every command releases what it started before its error reaches here; should a library still hold
  // the event loop (a socket, a timer), the error has been reported and the process ends anyway.
  setTimeout(() => { process.exit() }, 2000).unref()
}
