import { writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Option, type Command } from 'commander'
import { CID } from 'multiformats/cid'
import { commandContext } from '../context.ts'
import { int } from './network-flags.ts'
import { progressBar, formatBytes } from '../progress.ts'
import { withHomeNode } from '../../peer/with-node.ts'
import { addDataset, getDataset, listDatasets, type DatasetFormatHint } from '../../storage/datasets.ts'
import { exportCar, importCar } from '../../storage/car.ts'

export function parseCid (text: string): CID {
  try {
    return CID.parse(text)
  } catch {
    throw new Error(`"${text}" is not a CID`)
  }
}

const seconds = (v: string): number => int(v) * 1000

export function registerDataset (program: Command): void {
  const dataset = program.command('dataset').description('public datasets on IPFS: add, shard, fetch, list, export')

  dataset.command('add <path>')
    .description('import a file or folder as a sharded dataset, pin it and announce it on the DHT; prints the manifest CID.\n' +
      '<path>: a .csv with a header row, .jsonl/.ndjson, any other file as UTF-8 text (language models), a folder\n' +
      'with one subfolder of .pgm/.ppm images per class, or mnist: / mnist:<count> for the bundled MNIST digits')
    .requiredOption('--name <name>', 'dataset name')
    .option('--license <license>', 'SPDX id or free text', 'unspecified')
    .option('--description <text>', 'what the data is')
    .addOption(new Option('--shards <n>', 'number of shards (whole samples each)').argParser(int))
    .addOption(new Option('--shard-bytes <bytes>', 'target shard size instead of a count (default 16 MiB)').argParser(int))
    .addOption(new Option('--format <format>', 'force the format instead of guessing').choices(['csv', 'jsonl', 'text', 'image-records', 'mnist']))
    .option('--kubo-compatible', 'store shards as kubo\'s default `ipfs add` does (CIDv0, 256 KiB dag-pb chunks)')
    .option('--label <column>', 'CSV/JSONL: the label column or key (default: label)')
    .action(async (path: string, opts: { name: string, license: string, description?: string, shards?: number, shardBytes?: number, format?: DatasetFormatHint, kuboCompatible?: boolean, label?: string }, cmd: Command) => {
      const ctx = await commandContext(cmd)
      await withHomeNode(ctx, 'nearai dataset add', async (node) => {
        const bar = progressBar('importing', ctx.logger)
        try {
          const result = await addDataset(node.helia, path, {
            name: opts.name,
            license: opts.license,
            description: opts.description,
            shards: opts.shards,
            shardBytes: opts.shardBytes,
            format: opts.format,
            kuboCompatible: opts.kuboCompatible === true,
            // With no DHT peer (no bootstrap configured or reachable) there is nobody to announce to: import and pin only.
            provide: node.libp2p.services.dht.routingTable.size > 0,
            csv: opts.label != null ? { label: opts.label } as never : undefined,
            jsonl: opts.label != null ? { label: opts.label } as never : undefined,
            onProgress: (evt) => {
              if (evt.type === 'nearai:dataset:import:bytes') bar.update(evt.detail.imported, evt.detail.total, `shard ${evt.detail.shard + 1}/${evt.detail.shards}`)
            }
          })
          bar.stop()
          const m = result.manifest
          ctx.logger.info({ provided: result.provided.provided.length, failed: result.provided.failed.length }, 'announced on the DHT')
          process.stdout.write(`${result.cid.toString()}\n`)
          process.stderr.write(`dataset "${m.name}": ${m.shards.length} shards, ${m.totalSamples} samples, ${formatBytes(m.totalBytes)}, format ${m.format.kind}\n`)
        } finally {
          bar.stop()
        }
      })
    })

  dataset.command('get <cid>')
    .description('fetch a dataset (or one shard) by manifest CID, verifying every shard against its SHA-256')
    .addOption(new Option('--shard <i>', 'only this shard (0-based)').argParser(int))
    .option('--out <dir>', 'write manifest.json and shard-<i> files here (default: print a summary only)')
    .addOption(new Option('--timeout <seconds>', 'give up on a piece of content after this long').default(120_000, '120').argParser(seconds))
    .action(async (cidText: string, opts: { shard?: number, out?: string, timeout: number }, cmd: Command) => {
      const cid = parseCid(cidText)
      const ctx = await commandContext(cmd)
      await withHomeNode(ctx, 'nearai dataset get', async (node) => {
        const bar = progressBar('fetching', ctx.logger)
        const fetched = await getDataset(node.helia, cid, {
          shard: opts.shard,
          timeoutMs: opts.timeout,
          onProgress: (evt) => { bar.update(evt.detail.received, evt.detail.total) }
        }).finally(() => { bar.stop() })
        if (opts.out != null) {
          await mkdir(opts.out, { recursive: true })
          await writeFile(join(opts.out, 'manifest.json'), JSON.stringify(fetched.manifest, (_k, v) => CID.asCID(v)?.toString() ?? v, 2) + '\n')
          for (const s of fetched.shards) await writeFile(join(opts.out, `shard-${s.index}`), s.bytes)
        }
        for (const s of fetched.shards) process.stdout.write(`shard ${s.index}\t${s.cid.toString()}\t${s.bytes.byteLength} bytes\tverified\n`)
      })
    })

  dataset.command('ls')
    .description('list the datasets pinned on this node')
    .action(async (_opts, cmd: Command) => {
      const ctx = await commandContext(cmd)
      await withHomeNode(ctx, 'nearai dataset ls', async (node) => {
        for (const d of await listDatasets(node.helia)) {
          process.stdout.write(`${d.cid.toString()}\t${d.name}\t${d.format}\t${d.shards} shards\t${d.totalSamples} samples\t${formatBytes(d.totalBytes)}\t${d.license}\n`)
        }
      })
    })

  dataset.command('export <cid>')
    .description('write a dataset (manifest and every shard) to a CAR file, the format IPFS pinning services accept')
    .requiredOption('--car <file>', 'output CAR file')
    .action(async (cidText: string, opts: { car: string }, cmd: Command) => {
      const cid = parseCid(cidText)
      const ctx = await commandContext(cmd)
      await withHomeNode(ctx, 'nearai dataset export', async (node) => {
        const bar = progressBar('exporting', ctx.logger)
        const { bytes } = await exportCar(node.helia, cid, opts.car, { onProgress: (evt) => { bar.update(evt.detail.bytes, evt.detail.bytes) } }).finally(() => { bar.stop() })
        process.stderr.write(`wrote ${formatBytes(bytes)} to ${opts.car}\n`)
      })
    })

  dataset.command('import-car <file>')
    .description('import a CAR file (e.g. from `dataset export` or a pinning service), pin its root and print it')
    .action(async (file: string, _opts, cmd: Command) => {
      const ctx = await commandContext(cmd)
      await withHomeNode(ctx, 'nearai dataset import-car', async (node) => {
        const { root, blocks, bytes } = await importCar(node.helia, file)
        process.stdout.write(`${root.toString()}\n`)
        process.stderr.write(`imported ${blocks} blocks, ${formatBytes(bytes)}\n`)
      })
    })
}
