import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CarWriter } from '@ipld/car/writer'
import all from 'it-all'
import { CID } from 'multiformats/cid'
import { initHome } from '../../node/config/home.ts'
import { openHomeStore } from '../../node/peer/home-store.ts'
import { addDataset, listDatasets } from '../../node/storage/datasets.ts'
import { runCliWith, type CliResult } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'

/**
 * The bad-input tour: every command given what a new user gets wrong (missing and invalid arguments,
 * files that do not exist or are not what they should be, wrong CIDs, content no one has, bad numbers
 * and ports, locked and missing homes). Each case must end with a non-zero exit, nothing on stdout, one
 * line on stderr that names the problem (no stack trace, no library's internal message), no lock left in
 * the home and no partial output file. Cases that need no network must not start one: they run against
 * homes with no bootstrap node configured, where starting a network node for missing content is itself
 * an error (`NoNetworkError`), so a command that reached for the network would fail the case's message.
 */

const PEER = '12D3KooWGRYZDHBNaydhLQwxdUxRUG3Nr4dkBtPGgBg1nqxKCR6D'
/** A dag-cbor CID no one has. */
const NOBODYS = 'bafyreifa6bwtpqaeg2umvu3gj2daiqmed2zgpijedvyhv375kyuvbabpea'
/** No command may take longer than this; one that does has hung. */
const HANG_MS = 60_000

/**
 * What a case runs in: the worker's own copies of the homes (cases run a few at a time, and a home takes
 * one command at a time).
 */
interface Where { home: string, netHome: string }

interface Case {
  name: string
  args: string[] | ((where: Where) => string[])
  /** The whole stderr line (after "nearai"), as a pattern. */
  stderr: RegExp
  env?: NodeJS.ProcessEnv
  /** Files that must not exist afterwards (partial outputs, a chain's lock). */
  absent?: (where: Where) => string[]
}

/** A dag-pb CID (the empty UnixFS folder): could be a checkpoint, so only the chain flags decide. */
const EMPTY_FOLDER = 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn'

describe('nearai: the bad-input tour (every command, what a new user gets wrong)', function () {
  this.timeout(900_000)
  let dir: string
  let home: string // initialised, holds a dataset, no bootstrap node configured (each worker has a copy)
  let netHome: string // initialised, a bootstrap node configured that does not answer (each worker has a copy)
  let lockedHome: string // initialised, locked by this (live) test process
  let bareDir: string // not a home
  let dataset: string
  let shard: string
  let port: number
  let portHolder: Server
  const files: Record<string, string> = {}

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-bad-input-'))
    home = join(dir, 'home')
    netHome = join(dir, 'net-home')
    lockedHome = join(dir, 'locked-home')
    bareDir = join(dir, 'not-a-home')
    await mkdir(bareDir)
    for (const h of [home, netHome, lockedHome]) await initHome(h)
    await writeFile(join(home, 'config.json'), JSON.stringify({ network: { listen: ['/ip4/127.0.0.1/tcp/0'], relayClient: false } }))
    // Port 9 (discard) on loopback refuses connections: the node starts, finds no one, and waits for its deadline.
    await writeFile(join(netHome, 'config.json'), JSON.stringify({ network: { listen: ['/ip4/127.0.0.1/tcp/0'], relayClient: false, bootstrap: [`/ip4/127.0.0.1/tcp/9/p2p/${PEER}`] } }))
    await writeFile(join(lockedHome, 'node.lock'), JSON.stringify({ pid: process.pid, purpose: 'the bad-input test', since: new Date().toISOString() }))

    // The home's dataset, added through the library (faster than a CLI run): 30 samples of 8 features, 3 classes.
    const rows = ['label,a,b,c,d,e,f,g,h', ...Array.from({ length: 30 }, (_, i) => `${i % 3},${Array.from({ length: 8 }, (_, k) => (i * k) % 7).join(',')}`)]
    files.csv = join(dir, 'tiny.csv')
    await writeFile(files.csv, rows.join('\n') + '\n')
    const store = await openHomeStore(home)
    try {
      const added = await addDataset(store.helia, files.csv, { name: 'tiny', license: 'CC0-1.0', shards: 3, provide: false })
      dataset = added.cid.toString()
      shard = added.manifest.shards[1].cid.toString()
    } finally {
      await store.close()
    }

    files.binary = join(dir, 'random.bin')
    await writeFile(files.binary, randomBytes(8192))
    files.noLabel = join(dir, 'nolabel.csv')
    await writeFile(files.noLabel, 'a,b,c\n1,2,3\n')
    files.garbageCar = join(dir, 'garbage.car')
    await writeFile(files.garbageCar, randomBytes(59))
    files.headerOnlyCar = join(dir, 'header-only.car')
    const { writer, out } = CarWriter.create([CID.parse(NOBODYS)])
    const carBytes = all(out)
    await writer.close()
    await writeFile(files.headerOnlyCar, Buffer.concat(await carBytes))
    files.notJson = join(dir, 'not-json.json')
    await writeFile(files.notJson, '{ "id": "x", ')
    const spec = (model: unknown, extra: Record<string, unknown> = {}): string => JSON.stringify({ id: 'tour-job', model, dataset, ...extra })
    files.invalidSpec = join(dir, 'invalid.json')
    await writeFile(files.invalidSpec, spec({ kind: 'mlp', inputs: 8, hidden: [4], classes: 1 }, { rounds: -1 }))
    files.hugeSpec = join(dir, 'huge.json')
    await writeFile(files.hugeSpec, spec({ kind: 'mlp', inputs: 784, hidden: [1e9, 1e9], classes: 10 }))
    files.misfitSpec = join(dir, 'misfit.json')
    await writeFile(files.misfitSpec, spec({ kind: 'mlp', inputs: 784, hidden: [16], classes: 10 }))
    files.badDatasetSpec = join(dir, 'bad-dataset.json')
    await writeFile(files.badDatasetSpec, JSON.stringify({ id: 'tour-job', model: { kind: 'mlp', inputs: 8, hidden: [4], classes: 3 }, dataset: 'my-dataset' }))
    files.folder = join(dir, 'a-folder')
    await mkdir(files.folder)
    files.badConfigHome = join(dir, 'bad-config-home')
    await initHome(files.badConfigHome)
    await writeFile(join(files.badConfigHome, 'config.json'), '{ "network": ')
    files.unknownKeyHome = join(dir, 'unknown-key-home')
    await initHome(files.unknownKeyHome)
    await writeFile(join(files.unknownKeyHome, 'config.json'), JSON.stringify({ network: { listne: ['/ip4/0.0.0.0/tcp/0'] } }))

    // A port some other program holds.
    portHolder = createServer()
    await new Promise<void>(resolve => portHolder.listen(0, '127.0.0.1', resolve))
    port = (portHolder.address() as { port: number }).port
  })

  after(async () => {
    await new Promise<void>(resolve => portHolder.close(() => { resolve() }))
    await removeDir(dir)
  })

  const h = (where: Where): string[] => ['--home', where.home]
  const cases: Case[] = [
    // The program itself
    { name: 'an unknown option', args: ['--bogus'], stderr: /^nearai: unknown option '--bogus' \(see `nearai --help`\)$/ },
    { name: 'an unknown command', args: ['trian'], stderr: /^nearai: unknown command 'trian' \(see `nearai --help`\)$/ },
    { name: 'a log level that does not exist', args: (w) => [...h(w), '--log-level', 'loud', 'dataset', 'ls'], stderr: /^nearai: option '--log-level <level>' argument 'loud' is invalid\. Allowed choices are trace, debug, info, warn, error, fatal, silent\. \(see `nearai --help`\)$/ },
    { name: 'an empty --home', args: ['--home', '', 'dataset', 'ls'], stderr: /^nearai: --home \(or NEARAI_HOME\) is empty: give the node's home folder$/ },
    { name: 'a home that is a file', args: () => ['--home', files.csv, 'dataset', 'ls'], stderr: /^nearai: the home .*tiny\.csv is not a folder \(give --home a folder\)$/ },
    // init
    { name: 'init under a file', args: () => ['--home', join(files.csv, 'home'), 'init'], stderr: /^nearai: cannot create the home .*tiny\.csv\/home: a part of the path is a file, not a folder$/ },
    { name: 'init with an extra argument', args: (w) => [...h(w), 'init', 'now'], stderr: /^nearai init: too many arguments for 'init'\. Expected 0 arguments but got 1\. \(see `nearai init --help`\)$/ },
    // config
    { name: 'a config file that is not JSON', args: () => ['--home', files.badConfigHome, 'config', 'show'], stderr: /^nearai: .*bad-config-home\/config\.json: .*JSON/ },
    { name: 'a config file with a misspelt key', args: () => ['--home', files.unknownKeyHome, 'config', 'show'], stderr: /^nearai: invalid configuration: .*unknown-key-home\/config\.json network: Unrecognized key: "listne"$/ },
    { name: 'a number variable that is not a number', args: (w) => [...h(w), 'config', 'show'], env: { NEARAI_NETWORK_MAX_CONNECTIONS: 'lots' }, stderr: /^nearai: NEARAI_NETWORK_MAX_CONNECTIONS="lots" is not a number$/ },
    { name: 'a bootstrap variable without /p2p/', args: (w) => [...h(w), 'config', 'show'], env: { NEARAI_NETWORK_BOOTSTRAP: '/ip4/203.0.113.7/tcp/4010' }, stderr: /^nearai: invalid configuration: NEARAI_NETWORK_BOOTSTRAP: "\/ip4\/203\.0\.113\.7\/tcp\/4010" does not end in \/p2p\/<peer id>/ },
    { name: 'a log level variable that does not exist', args: (w) => [...h(w), 'config', 'show'], env: { NEARAI_LOG_LEVEL: 'loud' }, stderr: /^nearai: invalid configuration: NEARAI_LOG_LEVEL: Invalid option: expected one of "trace"\|"debug"\|"info"\|"warn"\|"error"\|"fatal"\|"silent"$/ },
    // dataset add
    { name: 'dataset add without --name', args: (w) => [...h(w), 'dataset', 'add', files.csv], stderr: /^nearai dataset add: required option '--name <name>' not specified \(see `nearai dataset add --help`\)$/ },
    { name: 'dataset add with an empty --name', args: (w) => [...h(w), 'dataset', 'add', files.csv, '--name', ' '], stderr: /^nearai: --name must not be empty$/ },
    { name: 'dataset add of a file that does not exist', args: (w) => [...h(w), 'dataset', 'add', join(dir, 'nope.csv'), '--name', 'x'], stderr: /^nearai: .*nope\.csv: no such file or folder \(or use mnist: for the built-in digits\)$/ },
    { name: 'dataset add of a binary file', args: (w) => [...h(w), 'dataset', 'add', files.binary, '--name', 'x'], stderr: /^nearai: .*random\.bin: line \d+ is not valid UTF-8, so this is not a text file \(a binary file\?\): text datasets hold UTF-8 text$/ },
    { name: 'dataset add with --shards 0', args: (w) => [...h(w), 'dataset', 'add', files.csv, '--name', 'x', '--shards', '0'], stderr: /^nearai dataset add: option '--shards <n>' argument '0' is invalid\. expected a whole number of at least 1/ },
    { name: 'dataset add with --shards abc', args: (w) => [...h(w), 'dataset', 'add', files.csv, '--name', 'x', '--shards', 'abc'], stderr: /^nearai dataset add: option '--shards <n>' argument 'abc' is invalid\. expected a whole number/ },
    { name: 'dataset add of more MNIST digits than there are', args: (w) => [...h(w), 'dataset', 'add', 'mnist:99999999', '--name', 'x'], stderr: /^nearai: mnist:99999999: the mnist package ships 10000 digits; ask for at most that many$/ },
    { name: 'dataset add with more shards than samples', args: (w) => [...h(w), 'dataset', 'add', files.csv, '--name', 'x', '--shards', '1000'], stderr: /^nearai: cannot cut 30 samples into 1000 shards$/ },
    { name: 'dataset add with a format that does not exist', args: (w) => [...h(w), 'dataset', 'add', files.csv, '--name', 'x', '--format', 'parquet'], stderr: /^nearai dataset add: option '--format <format>' argument 'parquet' is invalid\. Allowed choices are csv, jsonl, text, image-records, mnist\./ },
    { name: 'dataset add of a CSV without a label column', args: (w) => [...h(w), 'dataset', 'add', files.noLabel, '--name', 'x'], stderr: /^nearai: .*nolabel\.csv: no label column \(named one of label, class, target, y\); pass the label option$/ },
    { name: 'dataset add of a folder without class subfolders', args: (w) => [...h(w), 'dataset', 'add', files.folder, '--name', 'x'], stderr: /^nearai: .*a-folder/ },
    { name: 'dataset add on a folder that is not a home', args: () => ['--home', bareDir, 'dataset', 'add', files.csv, '--name', 'x'], stderr: /^nearai: no identity key at .*not-a-home\/identity\.key: run `nearai init --home .*not-a-home` first$/ },
    { name: 'dataset add on a home in use', args: () => ['--home', lockedHome, 'dataset', 'add', files.csv, '--name', 'x'], stderr: new RegExp(`^nearai: .*locked-home is in use by process ${process.pid} \\(the bad-input test\\): stop it first, or use another --home$`) },
    // dataset show / get / ls
    { name: 'dataset show of something that is not a CID', args: (w) => [...h(w), 'dataset', 'show', 'mnist'], stderr: /^nearai: "mnist" is not a dataset manifest CID \(a CID looks like bafy\.\.\. or Qm\.\.\.\)$/ },
    { name: 'dataset show of a shard CID', args: (w) => [...h(w), 'dataset', 'show', shard], stderr: /^nearai: \S+ is not a dataset manifest \(not dag-cbor\)$/ },
    { name: 'dataset show of a dataset not in the home, no bootstrap node', args: (w) => [...h(w), 'dataset', 'show', NOBODYS], stderr: new RegExp(`^nearai: dataset ${NOBODYS} is not in this home, and no bootstrap node is configured to find it on the network: add one with network\\.bootstrap in the home's config\\.json or NEARAI_NETWORK_BOOTSTRAP$`) },
    { name: 'dataset get of a shard that does not exist', args: (w) => [...h(w), 'dataset', 'get', dataset, '--shard', '99'], stderr: /^nearai: dataset \S+ has 3 shards \(0–2\); there is no shard 99$/ },
    { name: 'dataset get with a negative shard', args: (w) => [...h(w), 'dataset', 'get', dataset, '--shard=-1'], stderr: /^nearai dataset get: option '--shard <i>' argument '-1' is invalid\. expected a whole number/ },
    { name: 'dataset get with --timeout 0', args: (w) => [...h(w), 'dataset', 'get', dataset, '--timeout', '0'], stderr: /^nearai dataset get: option '--timeout <seconds>' argument '0' is invalid\. expected a number of seconds greater than 0/ },
    { name: 'dataset get with --timeout abc', args: (w) => [...h(w), 'dataset', 'get', dataset, '--timeout', 'abc'], stderr: /^nearai dataset get: option '--timeout <seconds>' argument 'abc' is invalid\./ },
    { name: 'dataset get --out onto a file', args: (w) => [...h(w), 'dataset', 'get', dataset, '--out', files.csv], stderr: /^nearai: --out .*tiny\.csv: is a file, not a folder$/ },
    { name: 'dataset get without a CID', args: (w) => [...h(w), 'dataset', 'get'], stderr: /^nearai dataset get: missing required argument 'cid' \(see `nearai dataset get --help`\)$/ },
    { name: 'dataset ls with an extra argument', args: (w) => [...h(w), 'dataset', 'ls', 'all'], stderr: /^nearai dataset ls: too many arguments for 'ls'/ },
    { name: 'dataset ls on a folder that is not a home', args: () => ['--home', bareDir, 'dataset', 'ls'], stderr: /^nearai: no identity key at .*: run `nearai init --home .*` first$/ },
    { name: 'dataset ls on a home in use', args: () => ['--home', lockedHome, 'dataset', 'ls'], stderr: /^nearai: .*locked-home is in use by process \d+ \(the bad-input test\)/ },
    // dataset export / import-car
    { name: 'dataset export without --car', args: (w) => [...h(w), 'dataset', 'export', dataset], stderr: /^nearai dataset export: required option '--car <file>' not specified/ },
    { name: 'dataset export into a folder that does not exist', args: (w) => [...h(w), 'dataset', 'export', dataset, '--car', '/no/such/dir/x.car'], stderr: /^nearai: --car \/no\/such\/dir\/x\.car: the folder \/no\/such\/dir does not exist$/ },
    { name: 'dataset export onto a folder', args: (w) => [...h(w), 'dataset', 'export', dataset, '--car', files.folder], stderr: /^nearai: --car .*a-folder: is a folder, give a file name$/ },
    {
      name: 'dataset export of a CID not in the home, no bootstrap node',
      args: (w) => [...h(w), 'dataset', 'export', NOBODYS, '--car', join(dir, 'nobody.car')],
      stderr: /^nearai: \S+ is not in this home, and no bootstrap node is configured/,
      absent: () => [join(dir, 'nobody.car')]
    },
    { name: 'dataset import-car of a file that does not exist', args: (w) => [...h(w), 'dataset', 'import-car', join(dir, 'nope.car')], stderr: /^nearai: .*nope\.car: no such file$/ },
    { name: 'dataset import-car of a folder', args: (w) => [...h(w), 'dataset', 'import-car', files.folder], stderr: /^nearai: .*a-folder: not a file$/ },
    { name: 'dataset import-car of a file that is not a CAR', args: (w) => [...h(w), 'dataset', 'import-car', files.garbageCar], stderr: /^nearai: .*garbage\.car is not a valid CAR file \(59 bytes; / },
    { name: 'dataset import-car of a CAR that holds only its header', args: (w) => [...h(w), 'dataset', 'import-car', files.headerOnlyCar], stderr: /^nearai: .*header-only\.car holds no blocks, not even its root \S+ \(an export that did not finish\?\)$/ },
    // pin
    { name: 'pin add with --timeout 0', args: (w) => [...h(w), 'pin', 'add', dataset, '--timeout', '0'], stderr: /^nearai pin add: option '--timeout <seconds>' argument '0' is invalid\. expected a number of seconds greater than 0/ },
    { name: 'pin add of something that is not a CID', args: (w) => [...h(w), 'pin', 'add', 'QmNope'], stderr: /^nearai: "QmNope" is not a CID/ },
    { name: 'pin add of a CID not in the home, no bootstrap node', args: (w) => [...h(w), 'pin', 'add', NOBODYS], stderr: /^nearai: \S+ is not in this home, and no bootstrap node is configured/ },
    { name: 'pin rm of a CID that is not pinned', args: (w) => [...h(w), 'pin', 'rm', NOBODYS], stderr: /^nearai: \S+ is not pinned on this node \(`nearai pin ls` lists the pins\)$/ },
    { name: 'pin rm of a block inside a pinned dataset', args: (w) => [...h(w), 'pin', 'rm', shard], stderr: /^nearai: \S+ is not pinned itself but is part of pinned content: unpin its root/ },
    { name: 'pin ls on a home in use', args: () => ['--home', lockedHome, 'pin', 'ls'], stderr: /^nearai: .*locked-home is in use by process \d+/ },
    // job
    { name: 'job create without --spec', args: (w) => [...h(w), 'job', 'create'], stderr: /^nearai job create: required option '--spec <file>' not specified/ },
    { name: 'job create with a spec file that does not exist', args: (w) => [...h(w), 'job', 'create', '--spec', join(dir, 'nope.json')], stderr: /^nearai: cannot read job spec .*nope\.json: no such file$/ },
    { name: 'job create with a folder as the spec', args: (w) => [...h(w), 'job', 'create', '--spec', files.folder], stderr: /^nearai: cannot read job spec .*a-folder: it is a folder, not a file$/ },
    { name: 'job create with a spec that is not JSON', args: (w) => [...h(w), 'job', 'create', '--spec', files.notJson], stderr: /^nearai: job spec .*not-json\.json is not valid JSON: / },
    { name: 'job create with invalid fields', args: (w) => [...h(w), 'job', 'create', '--spec', files.invalidSpec], stderr: /^nearai: invalid job spec: .*model\.classes: .*rounds: / },
    { name: 'job create with hidden sizes of 1e9', args: (w) => [...h(w), 'job', 'create', '--spec', files.hugeSpec], stderr: /^nearai: invalid job spec: model: the model has [\d,]+ parameters, over the limit of 100,000,000: make the layers smaller$/ },
    { name: 'job create with a model that does not fit the dataset', args: (w) => [...h(w), 'job', 'create', '--spec', files.misfitSpec], stderr: /^nearai: the job's model does not fit dataset \S+ \("tiny"\): the model takes inputs of shape \[784\] \(784 values\), the dataset's samples have shape \[8\] \(8 values\); the model has 10 classes, the dataset's labels have 3$/ },
    { name: 'job create with a dataset that is not a CID', args: (w) => [...h(w), 'job', 'create', '--spec', files.badDatasetSpec], stderr: /^nearai: the spec's dataset "my-dataset" is not a CID: give the dataset manifest CID that `nearai dataset add` printed$/ },
    { name: 'job ls with an extra argument', args: (w) => [...h(w), 'job', 'ls', 'mine'], stderr: /^nearai job ls: too many arguments for 'ls'/ },
    // checkpoint
    { name: 'checkpoint get of a dataset CID', args: (w) => [...h(w), 'checkpoint', 'get', dataset, '--out', join(dir, 'model')], stderr: /^nearai: \S+ is not a checkpoint: it is a dag-cbor block \(dataset manifests are dag-cbor: `nearai dataset show <cid>` shows one\), a checkpoint is a UnixFS folder with checkpoint\.json$/ },
    { name: 'checkpoint get of a file CID', args: (w) => [...h(w), 'checkpoint', 'get', shard, '--out', join(dir, 'model')], stderr: /^nearai: \S+ is not a checkpoint: it is a raw block \(one file's bytes\), a checkpoint is a UnixFS folder with checkpoint\.json$/ },
    { name: 'checkpoint get without --out', args: (w) => [...h(w), 'checkpoint', 'get', dataset], stderr: /^nearai checkpoint get: required option '--out <dir>' not specified/ },
    { name: 'checkpoint get of something that is not a CID', args: (w) => [...h(w), 'checkpoint', 'get', 'latest', '--out', join(dir, 'model')], stderr: /^nearai: "latest" is not a checkpoint CID/ },
    { name: 'checkpoint show of a dataset CID', args: (w) => [...h(w), 'checkpoint', 'show', dataset], stderr: /^nearai: \S+ is not a checkpoint: it is a dag-cbor block/ },
    { name: 'checkpoint show on a chain that does not exist', args: (w) => [...h(w), 'checkpoint', 'show', EMPTY_FOLDER, '--chain', 'moon'], stderr: /^nearai: --chain must be dev, testnet, mainnet or custom, not "moon"$/ },
    { name: 'checkpoint show on testnet without --contract', args: (w) => [...h(w), 'checkpoint', 'show', EMPTY_FOLDER, '--chain', 'testnet'], stderr: /^nearai: --contract is required with --chain testnet$/ },
    { name: 'checkpoint verify of something that is not a CID', args: (w) => [...h(w), 'checkpoint', 'verify', 'latest'], stderr: /^nearai: "latest" is not a CID/ },
    // chain
    { name: 'chain serve on port 70000', args: (w) => [...h(w), 'chain', 'serve', '--port', '70000'], stderr: /^nearai chain serve: option '--port <port>' argument '70000' is invalid\. a port is a number from 0 to 65535 \(0 picks a free one\)/ },
    { name: 'chain serve on port abc', args: (w) => [...h(w), 'chain', 'serve', '--port', 'abc'], stderr: /^nearai chain serve: option '--port <port>' argument 'abc' is invalid/ },
    { name: 'chain serve on an address that is not this machine\'s', args: (w) => [...h(w), 'chain', 'serve', '--host', '203.0.113.1', '--port', '0'], stderr: /^nearai: cannot serve on 203\.0\.113\.1:0: 203\.0\.113\.1 is not an address of this machine; choose another with --host$/, absent: (w) => [join(w.home, 'chain', 'LOCK')] },
    { name: 'chain serve on a port another program holds', args: (w) => [...h(w), 'chain', 'serve', '--port', String(port)], stderr: /^nearai: cannot serve on 127\.0\.0\.1:\d+: the port is in use; choose another with --port$/, absent: (w) => [join(w.home, 'chain', 'LOCK')] },
    // node start (each is refused before a node starts)
    { name: 'node start --job with a spec file that does not exist', args: (w) => [...h(w), 'node', 'start', '--job', join(dir, 'missing.json')], stderr: /^nearai: cannot read job spec .*missing\.json: no such file$/ },
    { name: 'node start --job with an unknown job id', args: (w) => [...h(w), 'node', 'start', '--job', 'mnist-mlp'], stderr: /^nearai: no job "mnist-mlp": not a spec file, not a job of this node/ },
    { name: 'node start --job with hidden sizes of 1e9', args: (w) => [...h(w), 'node', 'start', '--job', files.hugeSpec], stderr: /^nearai: invalid job spec: model: the model has [\d,]+ parameters, over the limit of 100,000,000/ },
    { name: 'node start --bootstrap that is not a multiaddr', args: (w) => [...h(w), 'node', 'start', '--bootstrap', 'not/a/multiaddr'], stderr: /^nearai: invalid configuration: --bootstrap: "not\/a\/multiaddr" is not a multiaddr/ },
    { name: 'node start --bootstrap without /p2p/', args: (w) => [...h(w), 'node', 'start', '--bootstrap', '/ip4/203.0.113.7/tcp/4010'], stderr: /^nearai: invalid configuration: --bootstrap: "\/ip4\/203\.0\.113\.7\/tcp\/4010" does not end in \/p2p\/<peer id>/ },
    { name: 'node start --listen that is not a multiaddr', args: (w) => [...h(w), 'node', 'start', '--listen', '0.0.0.0:4010'], stderr: /^nearai: invalid configuration: --listen: "0\.0\.0\.0:4010" is not a multiaddr/ },
    { name: 'node start --max-connections 0', args: (w) => [...h(w), 'node', 'start', '--max-connections', '0'], stderr: /^nearai node start: option '--max-connections <n>' argument '0' is invalid/ },
    { name: 'node start on a folder that is not a home', args: () => ['--home', bareDir, 'node', 'start'], stderr: /^nearai: no identity key at .*: run `nearai init --home .*` first$/ },
    { name: 'node start on a home in use', args: () => ['--home', lockedHome, 'node', 'start'], stderr: /^nearai: .*locked-home is in use by process \d+/ },
    {
      name: 'node start on a port another program holds',
      args: (w) => [...h(w), 'node', 'start', '--listen', `/ip4/127.0.0.1/tcp/${port}`],
      stderr: /^nearai: cannot listen on \/ip4\/127\.0\.0\.1\/tcp\/\d+: the port is already in use \(another node\?\): choose another with --listen \(config network\.listen, env NEARAI_NETWORK_LISTEN\), e\.g\. --listen \/ip4\/0\.0\.0\.0\/tcp\/0 for any free port$/
    },
    // bootstrap start, demo
    { name: 'bootstrap start --metrics-port 70000', args: (w) => [...h(w), 'bootstrap', 'start', '--metrics-port', '70000'], stderr: /^nearai bootstrap start: option '--metrics-port <port>' argument '70000' is invalid/ },
    { name: 'bootstrap start --pin of something that is not a CID', args: (w) => [...h(w), 'bootstrap', 'start', '--pin', 'mnist'], stderr: /^nearai: bootstrap\.pin\[0\] "mnist" is not a CID/ },
    { name: 'demo with one peer', args: ['demo', '--peers', '1'], stderr: /^nearai: --peers must be at least 2$/ },
    { name: 'demo with --rounds abc', args: ['demo', '--rounds', 'abc'], stderr: /^nearai demo: option '--rounds <n>' argument 'abc' is invalid/ }
  ]

  // Content no one serves, with a bootstrap node configured: each command starts a node, waits for its
  // --timeout and says so, leaving no partial file. First in the list: their waits overlap the other cases.
  const networkCases: Case[] = [
    { name: 'dataset get of a CID no one has, with --timeout 2', args: (w) => ['--home', w.netHome, '--log-level', 'error', 'dataset', 'get', NOBODYS, '--timeout', '2'], stderr: new RegExp(`^nearai: no provider delivered ${NOBODYS} within 2000 ms$`) },
    {
      name: 'dataset export of a CID no one has, with --timeout 2',
      args: (w) => ['--home', w.netHome, '--log-level', 'error', 'dataset', 'export', NOBODYS, '--car', join(w.netHome, 'x.car'), '--timeout', '2'],
      stderr: new RegExp(`^nearai: no provider delivered ${NOBODYS} within 2000 ms$`),
      absent: (w) => [join(w.netHome, 'x.car')]
    },
    { name: 'pin add of a CID no one has, with --timeout 2', args: (w) => ['--home', w.netHome, '--log-level', 'error', 'pin', 'add', NOBODYS, '--timeout', '2'], stderr: new RegExp(`^nearai: no provider delivered ${NOBODYS} within 2000 ms$`) }
  ]

  async function check (c: Case, where: Where): Promise<string | undefined> {
    const args = typeof c.args === 'function' ? c.args(where) : c.args
    const r: CliResult = await runCliWith(process.execPath, args, { env: { NEARAI_HOME: undefined, NEARAI_LOG_FORMAT: 'json', ...c.env }, timeoutMs: HANG_MS })
    const problems: string[] = []
    const lines = r.stderr.split('\n').filter(l => l.length > 0)
    if (r.code == null) problems.push(`did not exit within ${HANG_MS} ms`)
    else if (r.code === 0) problems.push('exited 0')
    if (r.stdout !== '') problems.push(`printed on stdout: ${JSON.stringify(r.stdout.slice(0, 200))}`)
    if (lines.length !== 1) problems.push(`stderr has ${lines.length} lines`)
    if (/^\s+at /m.test(r.stderr) || /internal error/.test(r.stderr)) problems.push('a stack trace or an internal error')
    if (!c.stderr.test(lines[0] ?? '')) problems.push(`stderr does not match ${String(c.stderr)}`)
    const homeArg = args.indexOf('--home')
    const caseHome = homeArg >= 0 ? args[homeArg + 1] : undefined
    if (caseHome != null && caseHome !== '' && existsSync(join(caseHome, 'node.lock'))) {
      const holder = JSON.parse(await readFile(join(caseHome, 'node.lock'), 'utf8')) as { pid: number }
      if (holder.pid !== process.pid) problems.push(`left a lock in ${caseHome}`)
    }
    for (const file of c.absent?.(where) ?? []) {
      if (existsSync(file)) problems.push(`left ${file}`)
      const partial = existsSync(join(file, '..')) ? (await readdir(join(file, '..'))).filter(f => f.startsWith(`${file.split('/').pop() ?? ''}.partial`)) : []
      if (partial.length > 0) problems.push(`left ${partial.join(', ')}`)
    }
    return problems.length > 0 ? `${c.name} (nearai ${args.join(' ')}): ${problems.join('; ')}\n  stderr: ${r.stderr.slice(0, 600)}` : undefined
  }

  /** Runs the cases, a few at a time (each is its own process), and reports every failure at once. */
  async function tour (list: Case[], concurrency: number): Promise<void> {
    const failures: string[] = []
    let next = 0
    await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
      const where = { home: join(dir, `home-${worker}`), netHome: join(dir, `net-home-${worker}`) }
      await cp(home, where.home, { recursive: true })
      await cp(netHome, where.netHome, { recursive: true })
      for (let i = next++; i < list.length; i = next++) {
        const failure = await check(list[i], where)
        if (failure != null) failures.push(failure)
      }
    }))
    assert.deepEqual(failures, [], `${failures.length} of ${list.length} cases failed:\n${failures.join('\n')}`)
  }

  it(`refuses ${cases.length} kinds of bad input with one clear line, a non-zero exit, no stack trace and nothing left behind; ` +
    `gives up on content no one serves at the --timeout (${networkCases.length} commands), with no partial file`, async () => {
    await tour([...networkCases, ...cases], 4)
  })

  it('lost nothing in the homes the tour ran in: each still holds its dataset, pinned, and no lock', async () => {
    const homes = (await readdir(dir)).filter(f => f.startsWith('home-')).map(f => join(dir, f))
    assert.ok((await readdir(dir)).filter(f => f.startsWith('net-home-')).every(f => !existsSync(join(dir, f, 'node.lock'))), 'no lock left in the network homes')
    assert.ok(homes.length > 0)
    for (const worker of homes) {
      assert.ok(!existsSync(join(worker, 'node.lock')), `no lock left in ${worker}`)
      const store = await openHomeStore(worker)
      try {
        assert.deepEqual((await all(store.helia.pins.ls())).map(p => p.cid.toString()), [dataset], `${worker} still pins its dataset`)
        const listed = await listDatasets(store.helia)
        assert.deepEqual(listed.map(d => [d.cid.toString(), d.name, d.totalSamples]), [[dataset, 'tiny', 30]])
      } finally {
        await store.close()
      }
    }
  })
})
