import { mkdir, stat } from 'node:fs/promises'
import { writeFileAtomic } from '../../config/durable-file.ts'
import { join } from 'node:path'
import { Option, type Command } from 'commander'
import type { CID } from 'multiformats/cid'
import { commandContext } from '../context.ts'
import { byteSize, int, parseCid, parseDatasetCid, positiveInt, timeoutSeconds } from '../arg-parsers.ts'
import { progressBar, formatBytes } from '../progress.ts'
import { outputFor, toJson, withJsonFlag } from '../output.ts'
import { checkOutputDir, checkOutputFile } from '../files.ts'
import { UsageError } from '../errors.ts'
import { localFirst, withHomeSession } from '../../peer/with-node.ts'
import type { DatasetFormatHint } from '../../storage/datasets.ts'
import { DEFAULT_DATASET_GET_MAX_BYTES, describeBytes } from '../../storage/limits.ts'
import type { DatasetManifest } from '../../../protocol/dataset-manifest.ts'

export { parseCid }

const DEFAULT_TIMEOUT_S = 120
const timeoutOption = (what: string): Option => new Option('--timeout <seconds>', `give up ${what} after this long`).default(DEFAULT_TIMEOUT_S * 1000, String(DEFAULT_TIMEOUT_S)).argParser(timeoutSeconds)

// The storage layer (Helia, UnixFS, CAR) is loaded when a command runs, not when its arguments are parsed.
const storage = async (): Promise<typeof import('../../storage/datasets.ts')> => await import('../../storage/datasets.ts')

export function registerDataset (program: Command): void {
  const dataset = program.command('dataset').description('public datasets on IPFS: add, shard, show, fetch, list, export')

  withJsonFlag(dataset.command('add <path>')
    .description('import a file or folder as a sharded dataset and pin it (and announce it on the DHT when a bootstrap node is ' +
      'configured); prints the manifest CID. <path>: a .csv with a header row, .jsonl/.ndjson, any other file as UTF-8 text ' +
      '(language models), a folder with one subfolder of .pgm/.ppm images per class, or mnist: / mnist:<count> for the ' +
      'bundled MNIST digits')
    .requiredOption('--name <name>', 'dataset name (required)')
    .option('--license <license>', 'SPDX id or free text', 'unspecified')
    .option('--description <text>', 'what the data is')
    .addOption(new Option('--shards <n>', 'number of shards (whole samples each)').argParser(positiveInt))
    .addOption(new Option('--shard-bytes <bytes>', 'target shard size instead of a count (default 16 MiB)').argParser(positiveInt))
    .addOption(new Option('--format <format>', 'force the format instead of guessing (text: also text with many control characters)').choices(['csv', 'jsonl', 'text', 'image-records', 'mnist']))
    .option('--kubo-compatible', 'store shards as kubo\'s default `ipfs add` does (CIDv0, 256 KiB dag-pb chunks)')
    .option('--label <column>', 'CSV/JSONL: the label column or key (default: label)'))
    .action(async (path: string, opts: { name: string, license: string, description?: string, shards?: number, shardBytes?: number, format?: DatasetFormatHint, kuboCompatible?: boolean, label?: string, json?: boolean }, cmd: Command) => {
      const out = outputFor(opts)
      if (opts.name.trim() === '') throw new UsageError('--name must not be empty')
      if (!/^mnist:\d*$/.test(path) && opts.format !== 'mnist') {
        await stat(path).catch(() => { throw new UsageError(`${path}: no such file or folder (or use mnist: for the built-in digits)`) })
      }
      const ctx = await commandContext(cmd)
      await withHomeSession(ctx, 'nearai dataset add', async (session) => {
        const { addDataset } = await storage()
        // With no bootstrap node there is nobody to announce to: import and pin on the home's store only.
        const announce = ctx.config.network.bootstrap.length > 0
        const node = announce ? await session.online('announcing the dataset') : undefined
        const helia = node?.helia ?? await session.local()
        const bar = progressBar('importing', ctx.logger, { json: out.json })
        try {
          const result = await addDataset(helia, path, {
            name: opts.name,
            license: opts.license,
            description: opts.description,
            shards: opts.shards,
            shardBytes: opts.shardBytes,
            format: opts.format,
            kuboCompatible: opts.kuboCompatible === true,
            provide: node != null && node.libp2p.services.dht.routingTable.size > 0,
            csv: opts.label != null ? { label: opts.label } as never : undefined,
            jsonl: opts.label != null ? { label: opts.label } as never : undefined,
            onProgress: (evt) => {
              if (evt.type === 'nearai:dataset:import:bytes') bar.update(evt.detail.imported, evt.detail.total, `shard ${evt.detail.shard + 1}/${evt.detail.shards}`)
            }
          })
          bar.stop()
          const m = result.manifest
          if (node != null) ctx.logger.info({ provided: result.provided.provided.length, failed: result.provided.failed.length }, 'announced on the DHT')
          else ctx.logger.info('not announced: no bootstrap node configured (network.bootstrap); peers find it once a node that has it announces it')
          out.result({
            cid: result.cid,
            name: m.name,
            license: m.license,
            format: m.format.kind,
            shards: m.shards.length,
            samples: m.totalSamples,
            bytes: m.totalBytes,
            announced: result.provided.provided.length > 0
          }, result.cid.toString())
          process.stderr.write(`dataset "${m.name}": ${m.shards.length} shards, ${m.totalSamples} samples, ${formatBytes(m.totalBytes)}, format ${m.format.kind}\n`)
        } finally {
          bar.stop()
        }
      })
    })

  withJsonFlag(dataset.command('show <cid>')
    .description('show a dataset\'s manifest (name, license, format, shards with sizes and sample counts, totals) without ' +
      'fetching its shards')
    .addOption(timeoutOption('fetching the manifest')))
    .action(async (cidText: string, opts: { timeout: number, json?: boolean }, cmd: Command) => {
      const cid = parseDatasetCid(cidText)
      const ctx = await commandContext(cmd)
      const manifest = await withHomeSession(ctx, 'nearai dataset show', async (session) => {
        const { getDatasetManifest } = await storage()
        return await localFirst(session, `dataset ${cid.toString()}`, async ({ helia, offline }) => await getDatasetManifest(helia, cid, { offline, timeoutMs: opts.timeout }))
      })
      outputFor(opts).result(datasetDocument(cid, manifest), () => describeDataset(cid, manifest))
    })

  withJsonFlag(dataset.command('get <cid>')
    .description('fetch a dataset (or one shard) by manifest CID, verifying every shard against its SHA-256')
    .addOption(new Option('--shard <i>', 'only this shard (0-based)').argParser(int))
    .option('--out <dir>', 'write manifest.json and shard-<i> files here (default: print a summary only)')
    .addOption(new Option('--max-bytes <size>', `refuse when the shards asked for hold more than this (e.g. 8GiB; default ${describeBytes(DEFAULT_DATASET_GET_MAX_BYTES)}): they are held in memory`).argParser(byteSize))
    .addOption(timeoutOption('on a piece of content')))
    .action(async (cidText: string, opts: { shard?: number, out?: string, maxBytes?: number, timeout: number, json?: boolean }, cmd: Command) => {
      const cid = parseDatasetCid(cidText)
      if (opts.out != null) await checkOutputDir(opts.out, '--out')
      const out = outputFor(opts)
      const ctx = await commandContext(cmd)
      const fetched = await withHomeSession(ctx, 'nearai dataset get', async (session) =>
        await localFirst(session, `dataset ${cid.toString()}`, async ({ helia, offline }) => {
          const { getDataset } = await storage()
          const bar = progressBar('fetching', ctx.logger, { json: out.json })
          try {
            return await getDataset(helia, cid, { shard: opts.shard, maxBytes: opts.maxBytes, timeoutMs: opts.timeout, offline, onProgress: (evt) => { bar.update(evt.detail.received, evt.detail.total) } })
          } finally {
            bar.stop()
          }
        }))
      if (opts.out != null) {
        await mkdir(opts.out, { recursive: true })
        // Each file whole or absent after a crash, and the manifest last: a folder with one has every shard.
        for (const s of fetched.shards) await writeFileAtomic(join(opts.out, `shard-${s.index}`), s.bytes)
        await writeFileAtomic(join(opts.out, 'manifest.json'), toJson(fetched.manifest) + '\n')
      }
      const shards = fetched.shards.map(s => ({ index: s.index, cid: s.cid, bytes: s.bytes.byteLength, samples: fetched.manifest.shards[s.index].samples, sha256: fetched.manifest.shards[s.index].sha256, verified: true, ...(opts.out != null ? { file: join(opts.out, `shard-${s.index}`) } : {}) }))
      out.result({ cid, name: fetched.manifest.name, shards, ...(opts.out != null ? { out: opts.out } : {}) },
        shards.map(s => `shard ${s.index}\t${s.cid.toString()}\t${s.bytes} bytes\tverified`))
    })

  withJsonFlag(dataset.command('ls')
    .description('list the datasets pinned on this node'))
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = await commandContext(cmd)
      const datasets = await withHomeSession(ctx, 'nearai dataset ls', async (session) => await (await storage()).listDatasets(await session.local()))
      outputFor(opts).result({ datasets },
        datasets.map(d => `${d.cid.toString()}\t${d.name}\t${d.format}\t${d.shards} shards\t${d.totalSamples} samples\t${formatBytes(d.totalBytes)}\t${d.license}`))
    })

  withJsonFlag(dataset.command('export <cid>')
    .description('write a dataset (manifest and every shard) to a CAR file, the format IPFS pinning services accept; ' +
      'the file appears only once it is complete')
    .requiredOption('--car <file>', 'output CAR file (required)')
    .addOption(timeoutOption('fetching what is not in this home')))
    .action(async (cidText: string, opts: { car: string, timeout: number, json?: boolean }, cmd: Command) => {
      const cid = parseCid(cidText)
      await checkOutputFile(opts.car, '--car')
      const out = outputFor(opts)
      const ctx = await commandContext(cmd)
      const { bytes } = await withHomeSession(ctx, 'nearai dataset export', async (session) =>
        await localFirst(session, cid.toString(), async ({ helia, offline }) => {
          const { exportCar } = await import('../../storage/car.ts')
          // The CAR's size is not known before the DAG is walked: progress counts what is written.
          const bar = progressBar('exporting', ctx.logger, { json: out.json })
          try {
            return await exportCar(helia, cid, opts.car, { offline, timeoutMs: opts.timeout, onProgress: (evt) => { bar.update(evt.detail.bytes, undefined, 'written') } })
          } finally {
            bar.stop()
          }
        }))
      out.result({ cid, car: opts.car, bytes }, [])
      process.stderr.write(`wrote ${formatBytes(bytes)} to ${opts.car}\n`)
    })

  withJsonFlag(dataset.command('import-car <file>')
    .description('import a CAR file (e.g. from `dataset export` or a pinning service), pin its root and print it'))
    .action(async (file: string, opts: { json?: boolean }, cmd: Command) => {
      const info = await stat(file).catch(() => undefined)
      if (info == null || !info.isFile()) throw new UsageError(`${file}: ${info == null ? 'no such file' : 'not a file'}`)
      const ctx = await commandContext(cmd)
      const { root, blocks, bytes } = await withHomeSession(ctx, 'nearai dataset import-car', async (session) =>
        await (await import('../../storage/car.ts')).importCar(await session.local(), file))
      outputFor(opts).result({ root, blocks, bytes }, root.toString())
      process.stderr.write(`imported ${blocks} blocks, ${formatBytes(bytes)}\n`)
    })
}

function datasetDocument (cid: CID, m: DatasetManifest): Record<string, unknown> {
  return {
    cid,
    name: m.name,
    license: m.license,
    ...(m.description != null ? { description: m.description } : {}),
    format: m.format,
    schema: m.schema,
    shards: m.shards.map((s, index) => ({ index, cid: s.cid, bytes: s.bytes, samples: s.samples, sha256: s.sha256 })),
    totalShards: m.shards.length,
    totalSamples: m.totalSamples,
    totalBytes: m.totalBytes
  }
}

function describeFormat (f: DatasetManifest['format']): string {
  switch (f.kind) {
    case 'csv': return `csv: ${f.columns.length - 1} features, label column "${f.label}", ${f.numClasses} classes${f.shape != null ? `, shape [${f.shape.join(', ')}]` : ''}`
    case 'jsonl': return `jsonl: features "${f.features}", label "${f.label}", ${f.numClasses} classes${f.shape != null ? `, shape [${f.shape.join(', ')}]` : ''}`
    case 'image-records': return `image-records: ${f.shape.join('x')} pixels, ${f.classes.length} classes (${f.classes.slice(0, 8).join(', ')}${f.classes.length > 8 ? ', ...' : ''})`
    case 'text': return `text (${f.encoding})`
  }
}

function describeDataset (cid: CID, m: DatasetManifest): string[] {
  const width = String(m.shards.length - 1).length
  return [
    `dataset ${cid.toString()}`,
    `name      ${m.name}`,
    `license   ${m.license}`,
    ...(m.description != null ? [`about     ${m.description}`] : []),
    `format    ${describeFormat(m.format)}`,
    `shards    ${m.shards.length}`,
    ...m.shards.map((s, i) => `  ${String(i).padStart(width)}  ${s.cid.toString()}  ${formatBytes(s.bytes).padStart(10)}  ${s.samples} samples`),
    `total     ${m.totalSamples} samples, ${formatBytes(m.totalBytes)}`
  ]
}
