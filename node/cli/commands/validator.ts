import { Option, type Command } from 'commander'
import { commandContext, flagsToOverrides } from '../context.ts'
import { gracefulShutdown } from '../../peer/lifecycle.ts'
import { lockHome } from '../../peer/home-lock.ts'
import { startNodeFromHome } from '../../peer/start-peer.ts'
import { ledgerConfigFrom, openLedger } from '../../chain/index.ts'
import { ConfigError } from '../../config/load.ts'
import { JobValidator } from '../../validator/job-validator.ts'
import { resolveValidatorJob } from '../../validator/resolve-job.ts'
import { registerReportCheat } from './trainer-bonds.ts'

export function registerValidator (program: Command): void {
  const validator = program.command('validator').description('validate jobs: check and attest their checkpoints on chain without training')
  validator.command('start')
    .description('follow a job as one of its validators, without training: for every checkpoint round, fetch the checkpoint ' +
      'from IPFS, verify its files and weights hash, evaluate it deterministically on the job\'s evaluation set and attest it ' +
      'on chain (config `chain`; the account must be one of the job\'s validators). Exits when the job\'s last round is attested.')
    .requiredOption('--job <job>', 'the job: its id on chain, a job id known to this home, a job spec file or a spec CID')
    .option('--account <id>', 'the validator\'s NEAR account (default: chain.accountId)')
    .option('--follow', 'keep running after the last round, serving the checkpoints it checked')
    .addOption(new Option('--exit-with-stdin', 'shut down cleanly when standard input closes').hideHelp())
    .action(async (opts: { job: string, account?: string, follow?: boolean, exitWithStdin?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd, flagsToOverrides(opts, { account: ['chain', 'accountId'] }))
      if (ctx.config.chain.accountId == null) throw new ConfigError('a validator needs its NEAR account: set chain.accountId (or --account)')
      const shutdown = gracefulShutdown(ctx.logger)
      if (opts.exitWithStdin === true) {
        process.stdin.on('close', () => { shutdown.request('stdin closed') })
        process.stdin.resume()
        void shutdown.done.then(() => { process.stdin.destroy() })
      }
      try {
        const lock = await lockHome(ctx.home, 'nearai validator start')
        shutdown.defer(lock.release)
        const ledger = await openLedger(ledgerConfigFrom({ ...ctx.config.chain, attest: false }, ctx.home))
        shutdown.defer(async () => { await ledger.close() })
        const node = await startNodeFromHome({ ...ctx, role: 'peer' })
        shutdown.defer(async () => { await node.stop() })
        if (!shutdown.requested) {
          const job = await resolveValidatorJob(ctx.home, node.helia, ledger, opts.job)
          ctx.logger.info({ job: job.spec.id, specCid: job.specCid, account: ledger.accountId, contract: ledger.contractId, network: ctx.config.chain.network }, 'validator starting')
          await new JobValidator({ node, ledger, job, logger: ctx.logger, signal: shutdown.signal, follow: opts.follow === true }).run()
        }
      } catch (err) {
        if (!shutdown.requested) {
          ctx.logger.error({ err: (err as Error).message }, 'validator stopped')
          process.stderr.write(`nearai: ${(err as Error).message}\n`)
          process.exitCode = 1
        }
      }
      shutdown.request('validator finished')
      await shutdown.done
    })
  registerReportCheat(validator)
}
