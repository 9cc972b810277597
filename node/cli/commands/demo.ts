import { Option, type Command } from 'commander'
import { int } from './network-flags.ts'
import type { DemoResult } from '../../demo/run-demo.ts'
import type { GlobalOptions } from '../context.ts'
import { SIGNAL_ECHO_MS } from '../../peer/lifecycle.ts'

export function registerDemo (program: Command): void {
  program.command('demo')
    .description('run a whole NearAI network on 127.0.0.1: a dev chain, a bootstrap node and peer processes train an MNIST MLP\n' +
      'together (dataset on IPFS, shards found through the DHT, butterfly all-reduce over libp2p, DiLoCo outer steps);\n' +
      'validator processes that do not train check and attest every checkpoint on chain, and the final checkpoint is\n' +
      'verified against its anchor')
    .addOption(new Option('--peers <n>', 'training peers (separate processes)').default(4).argParser(int))
    .addOption(new Option('--validators <n>', 'validators (separate processes that do not train); threshold: two thirds').default(3).argParser(int))
    .addOption(new Option('--rounds <n>', 'DiLoCo rounds').default(10).argParser(int))
    .addOption(new Option('--inner-steps <n>', 'inner AdamW steps per round (H)').default(50).argParser(int))
    .option('--keep-logs <dir>', 'write every peer\'s JSON log lines to <dir>/<peer>.log')
    .action(async (opts: { peers: number, validators: number, rounds: number, innerSteps: number, keepLogs?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>()
      const format = (g.logFormat as 'auto' | 'pretty' | 'json' | undefined) ?? 'auto'
      if (opts.peers < 2) throw new Error('--peers must be at least 2')
      if (opts.validators < 1 || opts.validators > 8) throw new Error('--validators must be between 1 and 8 (the dev chain\'s accounts validator-1.test...)')
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
        const result = await runDemo({ peers: opts.peers, validators: opts.validators, rounds: opts.rounds, innerSteps: opts.innerSteps, trainDigits: 8000, logger, tty, signal: abort.signal, logDir: opts.keepLogs })
        process.stdout.write(summary(result, Date.now() - started))
        if (!result.identical || !result.verify.ok || !result.allFinal || result.peers.some(p => !p.clean) || result.validatorProcesses.some(v => v.code !== 0)) process.exitCode = 1
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
  for (const p of r.peers.filter(p => !p.clean)) lines.push(`${p.name} exited with code ${String(p.code)} after ${p.rounds} rounds`)
  for (const v of r.validatorProcesses.filter(v => v.code !== 0)) lines.push(`${v.name} (${v.account}) exited with code ${String(v.code)}`)
  lines.push(`held-out accuracy (${r.heldOutSamples.toLocaleString('en-US')} digits no peer trained on): ${r.accuracy != null ? `${(r.accuracy * 100).toFixed(2)}%` : 'n/a'}`)
  lines.push(`weights hash of every peer: ${r.identical ? `identical (${r.hashes[0]})` : `DIFFERENT: ${r.peers.map(p => `${p.name} ${p.hash ?? '(none)'}`).join(', ')}`}`)
  lines.push(`final checkpoint CID: ${r.checkpoint ?? 'none'}`)
  lines.push(`bytes exchanged: ${(r.bytesExchanged / 1e6).toFixed(1)} MB`)
  lines.push(`time: ${(ms / 1000).toFixed(0)} s (setup ${(r.setupMs / 1000).toFixed(0)} s, training ${(r.trainingMs / 1000).toFixed(0)} s)`)
  for (const a of r.anchors) {
    lines.push(a.final
      ? `anchor of round ${a.round + 1}: final, checkpoint ${String(a.checkpointCid)}, eval loss ${String(a.evalLoss)}, attested by ${a.attesters.join(', ')}${a.dissenters.length > 0 ? `; outvoted: ${a.dissenters.join(', ')}` : ''}`
      : `anchor of round ${a.round + 1}: NOT FINAL`)
  }
  const v = r.verify
  const rounds = r.anchors.map(a => a.round + 1).join(', ')
  const anchorsLine = r.allFinal
    ? `every checkpoint anchor final on chain (rounds ${rounds}; ${r.validators.length} validators that do not train, threshold ${r.threshold})`
    : `NOT every checkpoint anchor is final on chain (rounds ${rounds}: ${r.anchors.map(a => a.final ? 'final' : 'open').join(', ')})`
  lines.push(`${anchorsLine}; ${v.ok
    ? `checkpoint verify: OK, the final checkpoint matches the anchor of job ${v.job} round ${v.round + 1} (weights sha256 ${v.weightsSha256.slice(0, 16)}...)`
    : `checkpoint verify: FAILED (${v.reason}): ${v.message}`}`)
  return lines.join('\n') + '\n'
}
