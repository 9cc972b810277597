import { Option, type Command } from 'commander'
import { createLogger } from '../../log/logger.ts'
import { int } from './network-flags.ts'
import { runDemo } from '../../demo/run-demo.ts'
import type { GlobalOptions } from '../context.ts'

export function registerDemo (program: Command): void {
  program.command('demo')
    .description('run a whole NearAI network on 127.0.0.1: a bootstrap node and peers train an MNIST MLP together\n' +
      '(dataset on IPFS, shards found through the DHT, butterfly all-reduce over libp2p, DiLoCo outer steps)')
    .addOption(new Option('--peers <n>', 'training peers').default(4).argParser(int))
    .addOption(new Option('--rounds <n>', 'DiLoCo rounds').default(10).argParser(int))
    .addOption(new Option('--inner-steps <n>', 'inner AdamW steps per round (H)').default(50).argParser(int))
    .action(async (opts: { peers: number, rounds: number, innerSteps: number }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      const logger = createLogger({ level: g.logLevel ?? 'info', format: (g.logFormat as 'auto' | 'pretty' | 'json' | undefined) ?? 'auto' })
      if (opts.peers < 2) throw new Error('--peers must be at least 2')
      const started = Date.now()
      const result = await runDemo({ peers: opts.peers, rounds: opts.rounds, innerSteps: opts.innerSteps, trainDigits: 8000, logger })
      const identical = result.hashes.every(h => h === result.hashes[0])
      process.stdout.write(`\nheld-out accuracy (2,000 digits no peer trained on): ${(result.accuracy * 100).toFixed(2)}%\n` +
        `weights hash of every peer: ${identical ? `identical (${result.hashes[0]})` : `DIFFERENT: ${result.hashes.join(', ')}`}\n` +
        `final checkpoint CID: ${result.checkpoint}\n` +
        `time: ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
      if (!identical) process.exitCode = 1
    })
}
