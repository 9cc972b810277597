import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Option, type Command } from 'commander'
import { int } from './network-flags.ts'
import { openLedger } from '../../chain/index.ts'
import { ledgerConfigFrom } from '../../chain/auto-attest.ts'
import { commandContext } from '../context.ts'
import { withHomeNode } from '../../peer/with-node.ts'
import { createJob } from '../../job/job-ref.ts'
import { loadJob, loadStatePointer, readJobSpecFile } from '../../job/job-store.ts'
import { onChainJob, requireValidatable } from '../../validator/job-requirements.ts'

export function registerJob (program: Command): void {
  const job = program.command('job').description('training jobs on this node (local jobs; on-chain jobs come with the DAO)')

  job.command('create')
    .description('validate a job spec (JSON: id, model, dataset CID, rounds, inner/outer optimizer, codec, checkpointEvery),\n' +
      'store it on IPFS (pinned) and record it in the home; then `nearai node start --job <id>` trains it')
    .requiredOption('--spec <file>', 'the job spec JSON file')
    .option('--validators <accounts>', 'also register the job on the configured chain (config `chain`), with these comma-separated validator accounts\n(the spec must name an evalDataset: validators evaluate every checkpoint on it)')
    .addOption(new Option('--threshold <n>', 'with --validators: distinct attestations that make a checkpoint anchor final (default: a majority)').argParser(int))
    .action(async (opts: { spec: string, validators?: string, threshold?: number }, cmd: Command) => {
      const ctx = await commandContext(cmd)
      const spec = await readJobSpecFile(opts.spec)
      const validators = opts.validators?.split(',').map(v => v.trim()).filter(v => v.length > 0)
      if (validators != null && validators.length === 0) throw new Error('--validators needs at least one account')
      const threshold = opts.threshold ?? (validators != null ? Math.floor(validators.length / 2) + 1 : undefined)
      if (validators != null && threshold != null && (threshold < 1 || threshold > validators.length)) throw new Error(`--threshold must be between 1 and ${validators.length}`)
      if (validators != null) requireValidatable(spec) // before anything is stored: a job on chain needs an evaluation set
      const stored = await withHomeNode(ctx, 'nearai job create', async (node) => await createJob(ctx.home, node.helia, spec))
      process.stdout.write(`job ${stored.spec.id}\nspec CID ${stored.specCid}\n` +
        `${stored.spec.rounds} rounds of ${stored.spec.inner.steps} inner steps on dataset ${stored.spec.dataset}; checkpoint every ${stored.spec.checkpointEvery} rounds\n`)
      if (validators != null && threshold != null) {
        const ledger = await openLedger(ledgerConfigFrom({ ...ctx.config.chain, attest: false }, ctx.home))
        try {
          const balance = await ledger.storageBalanceOf()
          if (balance == null) await ledger.storageDeposit()
          const job = await ledger.createJob(onChainJob(stored.spec, stored.specCid, validators, threshold))
          process.stdout.write(`on chain (${ctx.config.chain.network}, contract ${ledger.contractId}): validators ${job.validators.join(', ')}, threshold ${job.threshold}, evaluation set ${String(job.eval_cid)}\n`)
        } finally {
          await ledger.close()
        }
      }
    })

  job.command('ls')
    .description('list the jobs this node knows, with the last round it completed')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = await commandContext(cmd)
      let ids: string[] = []
      try { ids = await readdir(join(ctx.home, 'jobs')) } catch { /* no jobs yet */ }
      for (const id of ids.sort()) {
        const stored = await loadJob(ctx.home, id).catch(() => undefined)
        if (stored == null) continue
        const pointer = await loadStatePointer(ctx.home, id).catch(() => undefined)
        const done = pointer != null ? `round ${pointer.round + 1}/${stored.spec.rounds} (state ${pointer.cid})` : `not started (${stored.spec.rounds} rounds)`
        process.stdout.write(`${id}\t${stored.specCid}\t${done}\n`)
      }
    })
}
