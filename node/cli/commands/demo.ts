import { Option, type Command } from 'commander'
import { int } from './network-flags.ts'
import type { DemoResult } from '../../demo/run-demo.ts'
import type { GlobalOptions } from '../context.ts'
import { SIGNAL_ECHO_MS } from '../../peer/lifecycle.ts'

export function registerDemo (program: Command): void {
  program.command('demo')
    .description('run a whole NearAI network on 127.0.0.1: a dev chain, a bootstrap node and peer processes train an MNIST MLP\n' +
      'together (dataset on IPFS, shards found through the DHT, butterfly all-reduce over libp2p, DiLoCo outer steps), attest\n' +
      'the checkpoints on chain, and the final checkpoint is verified against its anchor')
    .addOption(new Option('--peers <n>', 'training peers (separate processes)').default(4).argParser(int))
    .addOption(new Option('--rounds <n>', 'DiLoCo rounds').default(10).argParser(int))
    .addOption(new Option('--inner-steps <n>', 'inner AdamW steps per round (H)').default(50).argParser(int))
    .option('--keep-logs <dir>', 'write every peer\'s JSON log lines to <dir>/<peer>.log')
    .action(async (opts: { peers: number, rounds: number, innerSteps: number, keepLogs?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      const format = (g.logFormat as 'auto' | 'pretty' | 'json' | undefined) ?? 'auto'
      if (opts.peers < 2) throw new Error('--peers must be at least 2')
      if (opts.rounds < 1) throw new Error('--rounds must be at least 1')
      if (opts.innerSteps < 1) throw new Error('--inner-steps must be at least 1')
      // The whole stack (libp2p, Helia, TensorFlow.js, the chain) loads once the flags are known to be good.
      const [{ createLogger }, { runDemo }] = await Promise.all([import('../../log/logger.ts'), import('../../demo/run-demo.ts')])
      const logger = createLogger({ level: g.logLevel ?? 'info', format })
      const tty = process.stderr.isTTY === true && format !== 'json'

      // Ctrl-C stops the peers and cleans up; a second one exits at once (runDemo still kills the peers).
      const abort = new AbortController()
      let first: { signal: NodeJS.Signals, at: number } | undefined
      const onSignal = (signal: NodeJS.Signals): void => {
        if (first != null) {
          // The launcher's echo of the same Ctrl-C is not a second one (see SIGNAL_ECHO_MS).
          if (first.signal === signal && Date.now() - first.at < SIGNAL_ECHO_MS) return
          process.exit(130)
        }
        first = { signal, at: Date.now() }
        process.stderr.write(`\n${signal}: stopping the peers and cleaning up (again to force)\n`)
        abort.abort(Object.assign(new Error(`interrupted (${signal})`), { signal }))
      }
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)
      const started = Date.now()
      try {
        const result = await runDemo({ peers: opts.peers, rounds: opts.rounds, innerSteps: opts.innerSteps, trainDigits: 8000, logger, tty, signal: abort.signal, logDir: opts.keepLogs })
        process.stdout.write(summary(result, Date.now() - started))
        if (!result.identical || !result.verify.ok || result.peers.some(p => p.code !== 0)) process.exitCode = 1
      } catch (err) {
        if (abort.signal.aborted) {
          process.stderr.write('demo interrupted; peers stopped, temporary files removed\n')
          process.exitCode = 130
          return
        }
        throw err
      } finally {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
    })
}

function summary (r: DemoResult, ms: number): string {
  const lines = ['']
  const failed = r.peers.filter(p => p.code !== 0)
  for (const p of failed) lines.push(`${p.name} (${p.account}) exited with code ${String(p.code)} after ${p.rounds} rounds`)
  lines.push(`held-out accuracy (${r.heldOutSamples.toLocaleString('en-US')} digits no peer trained on): ${r.accuracy != null ? `${(r.accuracy * 100).toFixed(2)}%` : 'n/a'}`)
  lines.push(`weights hash of every peer: ${r.identical ? `identical (${r.hashes[0]})` : `DIFFERENT: ${r.peers.map(p => `${p.name} ${p.hash ?? '(none)'}`).join(', ')}`}`)
  lines.push(`final checkpoint CID: ${r.checkpoint ?? 'none'}`)
  const v = r.verify
  lines.push(v.ok
    ? `checkpoint verify: OK, matches the final anchor of job ${v.job} round ${v.round + 1} on chain (weights sha256 ${v.weightsSha256.slice(0, 16)}..., attested by ${v.attesters.join(', ')}; threshold ${r.threshold} of ${r.validators.length})`
    : `checkpoint verify: FAILED (${v.reason}): ${v.message}`)
  lines.push(`bytes exchanged: ${(r.bytesExchanged / 1e6).toFixed(1)} MB`)
  lines.push(`time: ${(ms / 1000).toFixed(0)} s (setup ${(r.setupMs / 1000).toFixed(0)} s, training ${(r.trainingMs / 1000).toFixed(0)} s)`)
  return lines.join('\n') + '\n'
}
