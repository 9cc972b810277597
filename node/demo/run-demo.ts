/**
 * `nearai demo`: a whole NearAI network on 127.0.0.1, built from the same parts a real deployment uses.
 *
 *   chain       a fresh dev chain served as NEAR JSON-RPC (as `nearai chain serve`); the job is created on it
 *               with its evaluation set (the held-out digits) and the validators' accounts (threshold: two thirds)
 *   network     a bootstrap node in this process (DHT server, relay) that adds the MNIST digits to IPFS: a
 *               sharded training set and a held-out set no peer trains on
 *   peers       separate `nearai node start --job` processes, each with its own home and identity; they find
 *               the data through the DHT and train DiLoCo rounds together (butterfly all-reduce over libp2p);
 *               they have no chain account and attest nothing
 *   validators  separate `nearai validator start` processes that do not train, each with its own home and
 *               dev-chain account: they fetch every checkpoint, verify it, evaluate it deterministically on the
 *               held-out set and attest it on the served chain
 *   end         the peers' final weights hashes are compared, every checkpoint round's anchor is read from the
 *               chain, and the final checkpoint is verified against its anchor (`checkpoint verify`)
 *
 * Everything lives in a temporary folder that is removed at the end, on error and on Ctrl-C.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { CID } from 'multiformats/cid'
import { devPublicKey, devSecretKey, openLedger, type Ledger } from '../chain/index.ts'
import { verifyCheckpoint, type VerifyOutcome } from '../checkpoints/verify.ts'
import { getCheckpoint } from '../storage/checkpoints.ts'
import { createJob } from '../job/job-ref.ts'
import type { PeerNode } from '../network/peer-node.ts'
import {
  addMnistDatasets, initPeerHome, mnistJobSpec, provideWhenPeered, setPeerChainAccount, startLocalBootstrap,
  startLocalChain, startPeerProcess, startValidatorProcess, type LocalChain
} from './local-network.ts'
import type { LogLine, PeerProcess } from './peer-process.ts'
import { LiveView } from './live-view.ts'
import { sleep } from '../time/clock.ts'
import { onChainJob } from '../validator/job-requirements.ts'
import { checkpointRounds } from '../validator/job-validator.ts'

/** The demo's folder is removed with retries: a stopping node's datastore can still add an entry (ENOTEMPTY). */
const REMOVE_DIR_OPTIONS = { recursive: true, force: true, maxRetries: 5, retryDelay: 200 } as const

export interface DemoOptions {
  peers: number
  /** Validator processes (default 3). */
  validators?: number
  rounds: number
  /** Inner AdamW steps per round (H); the job spec's default when absent. */
  innerSteps?: number
  trainDigits: number
  shards?: number
  logger: Logger
  /** Bars on a terminal (true) or a log line per round (false). */
  tty: boolean
  /** Aborting stops the demo: the peers are stopped and everything is cleaned up. */
  signal?: AbortSignal
  /** Give up when no peer finished a round for this long (ms). */
  stallTimeoutMs?: number
  /** Extra arguments for every `nearai node start` (tests). */
  peerArgs?: string[]
  /** Copy every peer's JSON log lines to `<logDir>/<peer>.log` at the end (the rest is removed). */
  logDir?: string
}

export interface PeerOutcome {
  name: string
  code: number | null
  /** Exited 0, or shut down cleanly when the demo stopped it (see stopPeers). */
  clean: boolean
  hash?: string
  stateCid?: string
  evalAccuracy?: number
  rounds: number
}

export interface ValidatorOutcome {
  name: string
  account: string
  code: number | null
  /** Checkpoint rounds it attested (or had attested). */
  attested: number[]
}

/** A checkpoint round as the chain has it at the end. */
export interface AnchorOutcome {
  round: number
  final: boolean
  checkpointCid?: string
  evalLoss?: number
  attesters: string[]
  dissenters: string[]
}

export interface DemoResult {
  job: string
  specCid: string
  peers: PeerOutcome[]
  validatorProcesses: ValidatorOutcome[]
  /** Every checkpoint round of the job, read from the chain. */
  anchors: AnchorOutcome[]
  allFinal: boolean
  /** Held-out accuracy of the final weights (from the first peer that finished). */
  accuracy?: number
  heldOutSamples: number
  hashes: string[]
  identical: boolean
  checkpoint?: string
  verify: VerifyOutcome | { ok: false, reason: 'no-checkpoint', message: string }
  threshold: number
  validators: string[]
  bytesExchanged: number
  setupMs: number
  trainingMs: number
}

export const DEMO_CONTRACT = 'nearai.test'
const CREATOR = 'alice.test'

export function validatorAccount (i: number): string { return `validator-${i + 1}.test` }

/** How long a peer may serve the final checkpoint after the last round if the validators are slow (s). */
const FINAL_LINGER_S = 60

/** Two thirds of the validators, rounded up: a round is final once that many attested the same checkpoint. */
export function demoThreshold (validators: number): number { return Math.max(1, Math.ceil(validators * 2 / 3)) }

class DemoInterrupted extends Error {
  override name = 'DemoInterrupted'
}

export async function runDemo (opts: DemoOptions): Promise<DemoResult> {
  const log = opts.logger
  const quiet = log.child({ component: 'demo-node' }, { level: 'warn' })
  const started = Date.now()
  const dir = await mkdtemp(join(tmpdir(), 'nearai-demo-'))
  const names = Array.from({ length: opts.peers }, (_, i) => `peer-${i + 1}`)
  const validatorNames = Array.from({ length: opts.validators ?? 3 }, (_, i) => `validator-${i + 1}`)
  const accounts = validatorNames.map((_, i) => validatorAccount(i))
  const view = new LiveView({ peers: names, rounds: opts.rounds, logger: log, tty: opts.tty })
  const procs: PeerProcess[] = []
  const validatorProcs: PeerProcess[] = []
  let chain: LocalChain | undefined
  let boot: PeerNode | undefined
  let ledger: Ledger | undefined
  // A second Ctrl-C exits at once: leave no peer process or temporary folder behind even then.
  const onExit = (): void => {
    for (const p of [...procs, ...validatorProcs]) p.kill('SIGKILL')
    try { rmSync(dir, REMOVE_DIR_OPTIONS) } catch {}
  }
  process.once('exit', onExit)
  const interrupted = (): void => { if (opts.signal?.aborted === true) throw new DemoInterrupted(String(opts.signal.reason?.message ?? opts.signal.reason)) }

  try {
    // The chain: a fresh dev chain on a free port; the job's creator and validators are dev accounts.
    chain = await startLocalChain(dir, accounts)
    view.phase(`dev chain serving NEAR JSON-RPC at ${chain.url} (contract ${DEMO_CONTRACT})`, { rpcUrl: chain.url, dir })
    ledger = await openLedger({ network: 'custom', rpcUrl: chain.url, accountId: CREATOR, contractId: DEMO_CONTRACT, secretKey: devSecretKey(CREATOR) })
    interrupted()

    // The network and the data.
    boot = await startLocalBootstrap(dir, quiet)
    view.phase(`bootstrap node ${boot.peerId} on ${boot.multiaddrs[0]}`, { bootstrap: boot.multiaddrs[0] })
    const data = await addMnistDatasets(boot, dir, { trainDigits: opts.trainDigits, shards: opts.shards ?? 8 })
    view.phase(`MNIST on IPFS: ${data.trainSamples} training digits in ${opts.shards ?? 8} shards (${data.train}), ${data.heldOutSamples} held out (${data.heldOut})`,
      { train: data.train, heldOut: data.heldOut, trainSamples: data.trainSamples, heldOutSamples: data.heldOutSamples })
    const base = mnistJobSpec(data, { rounds: opts.rounds })
    const spec = opts.innerSteps != null ? mnistJobSpec(data, { rounds: opts.rounds, inner: { ...base.inner, steps: opts.innerSteps } }) : base
    const specPath = join(dir, 'job.json')
    await writeFile(specPath, JSON.stringify(spec, null, 2))
    // The spec's CID as every peer will compute it from the same file (`--job job.json`).
    const { specCid } = await createJob(join(dir, 'bootstrap-home'), boot.helia, spec)
    interrupted()

    // The job on chain, and storage deposits so the validators' first attestations need none.
    const threshold = demoThreshold(accounts.length)
    await ledger.storageDeposit()
    await ledger.createJob(onChainJob(spec, specCid, accounts, threshold))
    for (const a of accounts) await ledger.storageDeposit(undefined, a)
    view.phase(`job ${spec.id} created on chain: spec ${specCid}, evaluation set ${data.heldOut}, validators ${accounts.join(', ')}, threshold ${threshold}`, { job: spec.id, specCid, evalCid: data.heldOut, validators: accounts, threshold })
    const model = spec.model.kind === 'mlp' ? `MLP ${[spec.model.inputs, ...spec.model.hidden, spec.model.classes].join('-')}` : spec.model.kind
    view.phase(`${spec.rounds} rounds of ${spec.inner.steps} inner steps (${model}, ${spec.codec} updates), checkpoint every ${spec.checkpointEvery} rounds and at the end`)

    // The peers: each a `nearai node start --job` process with its own home, and no chain account.
    const homes = names.map(n => join(dir, n))
    for (const home of homes) await initPeerHome(home, boot.multiaddrs[0])
    // The validators: each a `nearai validator start` process with its own home and dev-chain account.
    const validatorHomes = validatorNames.map(n => join(dir, n))
    for (let i = 0; i < validatorNames.length; i++) {
      await initPeerHome(validatorHomes[i], boot.multiaddrs[0])
      await setPeerChainAccount(validatorHomes[i], { rpcUrl: chain.url, accountId: accounts[i], contractId: DEMO_CONTRACT, secretKey: devSecretKey(accounts[i]), publicKey: devPublicKey(accounts[i]) })
    }
    interrupted()
    const setupMs = Date.now() - started
    view.phase(`starting ${names.length} peer processes and ${validatorNames.length} validator processes (setup took ${(setupMs / 1000).toFixed(0)} s)`)
    const trainingStarted = Date.now()
    let lastProgress = Date.now()
    const prefetched = new Map<string, Promise<unknown>>()
    const lastRound = spec.rounds - 1
    view.start()
    for (let i = 0; i < validatorNames.length; i++) {
      const v = startValidatorProcess(validatorNames[i], validatorHomes[i], spec.id)
      validatorProcs.push(v)
      v.onLog((line: LogLine) => {
        if (line.event === 'validator-verified' || line.event === 'validator-round') lastProgress = Date.now()
        view.validatorLog(validatorNames[i], line)
      })
      void v.exited.then(code => { view.validatorExited(validatorNames[i], code) })
    }
    for (let i = 0; i < names.length; i++) {
      // After the last round a peer lingers, serving the final checkpoint to the validators; the demo stops it
      // once they are done.
      const p = startPeerProcess(names[i], homes[i], specPath, ['--linger', String(FINAL_LINGER_S), ...(opts.peerArgs ?? [])])
      procs.push(p)
      p.onLog((line: LogLine) => {
        if (line.event === 'round') {
          lastProgress = Date.now()
          view.round(i, line)
          // Fetch the final checkpoint while its peers still serve it: the chain check runs after they exit.
          if (Number(line.round) === lastRound && line.checkpoint === true && typeof line.stateCid === 'string' && !prefetched.has(line.stateCid)) {
            const booted = boot!
            prefetched.set(line.stateCid, getCheckpoint(booted.helia, CID.parse(line.stateCid), { timeoutMs: 60_000 }).catch((err: Error) => { log.debug({ err: err.message }, 'prefetching the final checkpoint failed') }))
          }
        } else {
          if (line.msg === 'adopted the network state') lastProgress = Date.now()
          view.peerLog(i, line)
        }
      })
      // A peer the demo ended after it had shut down cleanly (see stopPeers) counts as exited normally.
      void p.exited.then(code => { view.exited(i, stoppedCleanly(p) ? 0 : code) })
    }
    void provideWhenPeered(boot, data.roots).then(n => { log.debug({ provided: n }, 'datasets provided on the DHT') }, (err: Error) => { log.warn({ err: err.message }, 'providing the datasets failed') })

    // Wait for every peer and validator to exit, for Ctrl-C, or for a stall.
    const stallMs = opts.stallTimeoutMs ?? 5 * 60_000
    const allExited = Promise.all(procs.map(async p => await p.exited))
    const validatorsExited = Promise.all(validatorProcs.map(async p => await p.exited))
    let validatorsDone = false
    void validatorsExited.then(() => { validatorsDone = true })
    // Done when every validator has exited (it attested the last round, or failed) and every peer has finished the
    // job (it lingers, serving the final checkpoint) or exited.
    const finished = (): boolean => validatorsDone && procs.every(p => !p.running || p.logs.some(l => l.event === 'job-done'))
    let stopReason: Error | undefined
    await new Promise<void>(resolve => {
      const timer = setInterval(() => {
        if (finished()) done()
        else if (Date.now() - lastProgress > stallMs) { stopReason = new Error(`no peer finished a round and no validator made progress for ${Math.round(stallMs / 1000)} s`); done() }
      }, 500)
      const onAbort = (): void => { stopReason = new DemoInterrupted(String(opts.signal?.reason?.message ?? 'interrupted')); done() }
      const done = (): void => { clearInterval(timer); opts.signal?.removeEventListener('abort', onAbort); resolve() }
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      if (opts.signal?.aborted === true) onAbort()
    })
    if (stopReason != null) {
      await stopPeers([...procs, ...validatorProcs], { ownShutdownMs: fromTerminal(opts.signal) ? 12_000 : 1_000 })
      view.stop()
      if (!(stopReason instanceof DemoInterrupted)) {
        for (const p of [...procs, ...validatorProcs]) log.error({ peer: p.name, last: p.logs.slice(-4) }, 'last log lines')
      }
      throw stopReason
    }
    view.stop()
    const trainingMs = Date.now() - trainingStarted
    await Promise.all(prefetched.values())

    // The outcome: every peer's final weights hash, every checkpoint round's anchor, the final checkpoint against the chain.
    const validatorCodes = await validatorsExited
    const validatorProcesses: ValidatorOutcome[] = validatorProcs.map((v, i) => ({
      name: v.name, account: accounts[i], code: validatorCodes[i], attested: v.logs.filter(l => l.event === 'validator-round').map(l => Number(l.round))
    }))
    const outcomes = procs.map(p => p.logs.find(l => l.event === 'job-done'))
    const anchors: AnchorOutcome[] = []
    for (const round of checkpointRounds(spec.rounds, spec.checkpointEvery)) {
      const a = await ledger.getAnchor(spec.id, round)
      anchors.push({ round, final: a?.final != null, checkpointCid: a?.final?.checkpoint_cid, evalLoss: a?.final?.eval_loss, attesters: a?.final?.attesters ?? [], dissenters: a?.dissent.map(d => d.validator) ?? [] })
    }
    const allFinal = anchors.length > 0 && anchors.every(a => a.final)
    // The final checkpoint: the one anchored on chain for the last round (else the one most peers ended with).
    const votes = new Map<string, number>()
    for (const o of outcomes) if (typeof o?.stateCid === 'string') votes.set(o.stateCid, (votes.get(o.stateCid) ?? 0) + 1)
    const majority = [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0]
    const checkpoint = anchors.find(a => a.round === lastRound)?.checkpointCid ?? majority
    const verify = checkpoint == null
      ? { ok: false as const, reason: 'no-checkpoint' as const, message: 'no peer finished the job' }
      : await verifyCheckpoint(boot.helia, ledger, CID.parse(checkpoint), { timeoutMs: 30_000 })
    await stopPeers(procs) // done lingering
    const codes = await allExited
    const peers: PeerOutcome[] = procs.map((p, i) => {
      const done = outcomes[i]
      return { name: p.name, code: codes[i], clean: codes[i] === 0 || stoppedCleanly(p), hash: done?.hash, stateCid: done?.stateCid, evalAccuracy: done?.evalAccuracy, rounds: p.rounds().length }
    })
    const identical = peers.every(p => p.hash != null && p.hash === peers[0].hash)
    const ended = peers.find(p => p.stateCid === checkpoint) ?? peers.find(p => p.stateCid === majority)
    const hashes = peers.map(p => p.hash ?? '(none)')
    // The accuracy of the final weights: a peer that adopted the final state from the network did not evaluate
    // it itself, so take it from a final-round line with the final hash.
    const finalLine = procs.flatMap(p => p.rounds()).find(l => Number(l.round) === lastRound && l.hash === ended?.hash && typeof l.evalAccuracy === 'number')
    const accuracy = (finalLine?.evalAccuracy as number | undefined) ?? ended?.evalAccuracy
    const bytesExchanged = procs.flatMap(p => p.rounds()).reduce((n, l) => n + Number(l.bytesSent ?? 0), 0)
    return { job: spec.id, specCid, peers, validatorProcesses, anchors, allFinal, accuracy, heldOutSamples: Math.min(data.heldOutSamples, spec.eval.maxSamples), hashes, identical, checkpoint, verify, threshold, validators: accounts, bytesExchanged, setupMs, trainingMs }
  } finally {
    view.stop()
    await stopPeers([...procs, ...validatorProcs])
    if (opts.logDir != null) await writePeerLogs(opts.logDir, [...procs, ...validatorProcs]).catch((err: Error) => { log.warn({ err: err.message }, 'could not write the peer logs') })
    await ledger?.close().catch(() => {})
    await boot?.stop().catch(() => {})
    await chain?.close().catch(() => {})
    process.off('exit', onExit)
    await removeDir(dir)
  }
}

/**
 * Removes the demo's folder. The stopped bootstrap node's peer store may still write a record or two just
 * after `stop()` resolves, so try again shortly after, and once more when the process exits.
 */
async function removeDir (dir: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await rm(dir, REMOVE_DIR_OPTIONS)
    await sleep(200)
  }
  process.once('exit', () => { try { rmSync(dir, REMOVE_DIR_OPTIONS) } catch {} })
}

async function writePeerLogs (logDir: string, procs: PeerProcess[]): Promise<void> {
  await mkdir(logDir, { recursive: true })
  for (const p of procs) await writeFile(join(logDir, `${p.name}.log`), p.logs.map(l => l.raw === true ? String(l.msg) : JSON.stringify(l)).join('\n') + '\n')
}

/**
 * Ctrl-C on a terminal reaches the whole foreground process group: the peers got the SIGINT too, and a
 * peer busy with its inner steps handles it only seconds later.
 */
function fromTerminal (signal?: AbortSignal): boolean {
  return signal?.aborted === true && (signal.reason as { signal?: string } | undefined)?.signal === 'SIGINT' &&
    (process.stderr.isTTY === true || process.stdout.isTTY === true)
}

/**
 * Stops every running peer cleanly (SIGTERM) and kills those still running after `graceMs`. A peer already
 * shutting down is left to finish (a second signal would cut its shutdown short); `ownShutdownMs` is how long
 * to watch for that before sending SIGTERM.
 */
async function stopPeers (procs: PeerProcess[], opts: { ownShutdownMs?: number, graceMs?: number } = {}): Promise<void> {
  const running = procs.filter(p => p.running)
  if (running.length === 0) return
  const exited = Promise.all(running.map(async p => await p.exited))
  const shuttingDown = (p: PeerProcess): boolean => !p.running || p.logs.some(l => l.msg === 'shutting down')
  const watchUntil = Date.now() + (opts.ownShutdownMs ?? 1_000)
  while (Date.now() < watchUntil && !running.every(shuttingDown)) await sleep(200)
  for (const p of running) if (!shuttingDown(p)) p.kill('SIGTERM')
  // A peer stopped while it lingers after its job shuts its node down at once ("stopped cleanly") but then waits
  // out its --linger timer: nothing is left to lose, so it is ended there.
  const until = Date.now() + (opts.graceMs ?? 15_000)
  while (Date.now() < until && running.some(p => p.running)) {
    for (const p of running) if (p.running && stoppedCleanly(p)) p.kill('SIGKILL')
    await sleep(200)
  }
  for (const p of running) p.kill('SIGKILL')
  await exited
}

function stoppedCleanly (p: PeerProcess): boolean {
  return p.logs.some(l => l.msg === 'stopped cleanly')
}

