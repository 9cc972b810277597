import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Option, type Command } from 'commander'
import { CID } from 'multiformats/cid'
import { int } from './network-flags.ts'
import { timeoutSeconds } from '../arg-parsers.ts'
import { commandContext } from '../context.ts'
import { outputFor, withJsonFlag } from '../output.ts'
import { checkInputFile } from '../files.ts'
import { localFirst, withHomeSession } from '../../peer/with-node.ts'
import type { JobSpec } from '../../training/job-spec.ts'
import { onChainJob, requireValidatable } from '../../validator/job-requirements.ts'
import { nearAmount, registerTrainerBondCommands } from './trainer-bonds.ts'
import { formatNear } from '../../chain/near-amount.ts'

export function registerJob (program: Command): void {
  const job = program.command('job').description('training jobs on this node (local jobs; on-chain jobs come with the DAO)')

  withJsonFlag(job.command('create')
    .description('validate a job spec (JSON: id, model, dataset CID, rounds, inner/outer optimizer, codec, checkpointEvery),\n' +
      'check that the model fits the dataset (its manifest: input shape, classes), store the spec on IPFS (pinned) and\n' +
      'record it in the home; then `nearai node start --job <id>` trains it')
    .requiredOption('--spec <file>', 'the job spec JSON file (required)')
    .addOption(new Option('--timeout <seconds>', 'give up fetching the dataset manifest after this long').default(60_000, '60').argParser(timeoutSeconds))
    .option('--skip-dataset-check', 'store the spec without reading its datasets\' manifests (the model is then not checked against the data)'))
    .option('--validators <accounts>', 'also register the job on the configured chain (config `chain`), with these comma-separated validator accounts\n(the spec must name an evalDataset: validators evaluate every checkpoint on it)')
    .addOption(new Option('--threshold <n>', 'with --validators: distinct attestations that make a checkpoint anchor final (default: a majority)').argParser(int))
    .addOption(new Option('--trainer-bond <NEAR>', 'with --validators: every trainer must bond this much to train the job (default 0: an open job);\nthe job\'s threshold of validators reporting a trainer burns its bond').argParser(nearAmount))
    .addOption(new Option('--unbonding-blocks <n>', 'with --validators: blocks a trainer waits between leaving and withdrawing its bond (default 86400, about a day)').argParser(int))
    .action(async (opts: { spec: string, validators?: string, threshold?: number, trainerBond?: bigint, unbondingBlocks?: number, timeout: number, skipDatasetCheck?: boolean, json?: boolean }, cmd: Command) => {
      const out = outputFor(opts)
      await checkInputFile(opts.spec, 'cannot read job spec') // before loading the spec's schema
      const { readJobSpecFile } = await import('../../job/job-store.ts')
      const spec = await readJobSpecFile(opts.spec)
      const validators = opts.validators?.split(',').map(v => v.trim()).filter(v => v.length > 0)
      if (validators != null && validators.length === 0) throw new Error('--validators needs at least one account')
      const threshold = opts.threshold ?? (validators != null ? Math.floor(validators.length / 2) + 1 : undefined)
      if (validators != null && threshold != null && (threshold < 1 || threshold > validators.length)) throw new Error(`--threshold must be between 1 and ${validators.length}`)
      if (validators == null && (opts.trainerBond != null || opts.unbondingBlocks != null)) throw new Error('--trainer-bond and --unbonding-blocks apply to a job on chain: give --validators too')
      if (opts.unbondingBlocks != null && (opts.unbondingBlocks < 1 || opts.unbondingBlocks > 31_536_000)) throw new Error('--unbonding-blocks must be between 1 and 31536000')
      if (validators != null) requireValidatable(spec) // before anything is stored: a job on chain needs an evaluation set
      const datasets = opts.skipDatasetCheck === true ? [] : datasetCids(spec)
      const ctx = await commandContext(cmd)
      const [{ createJob }, { getDatasetManifest }, { checkModelFitsDataset }] = await Promise.all([
        import('../../job/job-ref.ts'), import('../../storage/datasets.ts'), import('../../training/dataset-fit.ts')])
      const stored = await withHomeSession(ctx, 'nearai job create', async (session) => {
        // The model must fit the data: read each dataset's manifest (from the home, else the network) first.
        for (const { field, cid } of datasets) {
          const manifest = await localFirst(session, `dataset ${cid.toString()} (the spec's ${field})`, async ({ helia, offline }) => await getDatasetManifest(helia, cid, { offline, timeoutMs: opts.timeout }))
          checkModelFitsDataset(spec.model, manifest, `${field} ${cid.toString()} ("${manifest.name}")`)
        }
        return await createJob(ctx.home, await session.helia(), spec)
      })
      const result: Record<string, unknown> = { job: stored.spec.id, specCid: stored.specCid, rounds: stored.spec.rounds, innerSteps: stored.spec.inner.steps, dataset: stored.spec.dataset, checkpointEvery: stored.spec.checkpointEvery }
      const lines = [`job ${stored.spec.id}`, `spec CID ${stored.specCid}`,
        `${stored.spec.rounds} rounds of ${stored.spec.inner.steps} inner steps on dataset ${stored.spec.dataset}; checkpoint every ${stored.spec.checkpointEvery} rounds`]
      if (validators != null && threshold != null) {
        const [{ openLedger }, { ledgerConfigFrom }] = await Promise.all([import('../../chain/index.ts'), import('../../chain/auto-attest.ts')])
        const ledger = await openLedger(ledgerConfigFrom({ ...ctx.config.chain, attest: false }, ctx.home))
        try {
          const balance = await ledger.storageBalanceOf()
          if (balance == null) await ledger.storageDeposit()
          const job = await ledger.createJob({ ...onChainJob(stored.spec, stored.specCid, validators, threshold), trainerBondYocto: opts.trainerBond, unbondingBlocks: opts.unbondingBlocks })
          result.onChain = { network: ctx.config.chain.network, contract: ledger.contractId, validators: job.validators, threshold: job.threshold, evalCid: job.eval_cid, trainerBondYocto: job.trainer_bond, unbondingBlocks: job.unbonding_blocks }
          lines.push(`on chain (${ctx.config.chain.network}, contract ${ledger.contractId}): validators ${job.validators.join(', ')}, threshold ${job.threshold}, evaluation set ${String(job.eval_cid)}`)
          if (job.trainer_bond !== '0') lines.push(`trainers must register with a bond of ${formatNear(job.trainer_bond)} NEAR (\`nearai job register-trainer --job ${job.job}\`); unbonding delay ${job.unbonding_blocks} blocks`)
        } finally {
          await ledger.close()
        }
      }
      out.result(result, lines)
    })

  registerTrainerBondCommands(job)

  withJsonFlag(job.command('ls')
    .description('list the jobs this node knows, with the last round it completed'))
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd)
      const { loadJob, loadStatePointer } = await import('../../job/job-store.ts')
      let ids: string[] = []
      try { ids = await readdir(join(ctx.home, 'jobs')) } catch { /* no jobs yet */ }
      const jobs = []
      for (const id of ids.sort()) {
        const stored = await loadJob(ctx.home, id).catch(() => undefined)
        if (stored == null) continue
        const pointer = await loadStatePointer(ctx.home, id).catch(() => undefined)
        jobs.push({ job: id, specCid: stored.specCid, rounds: stored.spec.rounds, completedRounds: pointer != null ? pointer.round + 1 : 0, stateCid: pointer?.cid ?? null })
      }
      outputFor(opts).result({ jobs }, jobs.map(j =>
        `${j.job}\t${j.specCid}\t${j.stateCid != null ? `round ${j.completedRounds}/${j.rounds} (state ${j.stateCid})` : `not started (${j.rounds} rounds)`}`))
    })
}

/** The dataset CIDs a spec names, checked to be CIDs (the schema only says non-empty strings). */
function datasetCids (spec: JobSpec): Array<{ field: string, cid: CID }> {
  const named = [{ field: 'dataset', text: spec.dataset }, ...(spec.evalDataset != null ? [{ field: 'evalDataset', text: spec.evalDataset }] : [])]
  return named.map(({ field, text }) => {
    try {
      return { field, cid: CID.parse(text) }
    } catch {
      throw new Error(`the spec's ${field} "${text}" is not a CID: give the dataset manifest CID that \`nearai dataset add\` printed`)
    }
  })
}
