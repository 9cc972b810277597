import { Option, type Command } from 'commander'
import { commandContext, flagsToOverrides } from '../context.ts'
import { addNetworkFlags, int } from './network-flags.ts'
import { gracefulShutdown } from '../../peer/lifecycle.ts'
import { lockHome } from '../../peer/home-lock.ts'
import type { BackendName } from '../../training/backend.ts'
import type { PeerNode } from '../../network/peer-node.ts'
import { openChainAttester } from '../../round/attest-step.ts'
import { sleep } from '../../time/clock.ts'

export function registerNode (program: Command): void {
  const node = program.command('node').description('run a peer node')
  const start = node.command('start')
    .description('start a peer: join the network through the bootstrap list, serve the DHT, gossip, and (with --job) train.\n' +
      'With --job the node trains the job with the other peers of the job, resuming from its last round after a restart\n' +
      'and catching up from the network when it is behind; it exits when the job has run all its rounds.')
    .addOption(new Option('--no-dht-server', 'stay a DHT client (for peers that others cannot dial)'))
    .addOption(new Option('--no-relay-client', 'do not reserve a circuit relay slot on bootstrap nodes'))
    .option('--job <job>', 'train this job: a job spec file (JSON), a job id from `nearai job create`, or a job spec CID')
    .addOption(new Option('--backend <name>', 'force a TensorFlow.js backend instead of the fastest available').choices(['tfjs-node-gpu', 'tfjs-node', 'wasm', 'cpu']))
    .addOption(new Option('--join-wait <seconds>', 'at start, listen this long for a newer state of the job before training').default(5).argParser(int))
    .addOption(new Option('--linger <seconds>', 'after the last round, keep serving the final state this long before exiting').default(5).argParser(int))
    .addOption(new Option('--exit-with-stdin', 'shut down cleanly when standard input closes (a parent process that starts peers uses it so none outlives it)').hideHelp())
  const map = addNetworkFlags(start)
  start.action(async (opts: Record<string, unknown> & { job?: string, backend?: BackendName, joinWait: number, linger: number }, cmd: Command) => {
    const flags = flagsToOverrides(opts, {
      ...map,
      // commander sets negatable flags to true by default; only an explicit --no-* should override the config.
      ...(opts.dhtServer === false ? { dhtServer: ['network', 'dhtServer'] } : {}),
      ...(opts.relayClient === false ? { relayClient: ['network', 'relayClient'] } : {})
    })
    const ctx = await commandContext(cmd, flags, { flagMap: map })
    // --job and --backend are checked before anything starts: a typo ends in an error, not in a node that runs on.
    // (libp2p, TensorFlow.js and the trainer load only then: a mistyped flag is reported in a moment.)
    const { parseJobRef, materializeJob } = await import('../../job/job-ref.ts')
    const jobRef = opts.job != null ? await parseJobRef(ctx.home, opts.job) : undefined
    const backend = opts.job != null ? await (await import('../../training/backend.ts')).selectBackend({ force: opts.backend }) : undefined
    const { startNodeFromHome } = await import('../../peer/start-peer.ts')
    const shutdown = gracefulShutdown(ctx.logger)
    if (opts.exitWithStdin === true) {
      process.stdin.on('close', () => { shutdown.request('stdin closed') })
      process.stdin.resume()
      // The open stdin keeps the event loop alive: release it once the node has stopped, or it never exits.
      void shutdown.done.then(() => { process.stdin.destroy() })
    }
    let peer: PeerNode
    try {
      const lock = await lockHome(ctx.home, 'nearai node start')
      shutdown.defer(lock.release)
      peer = await startNodeFromHome({ ...ctx, role: 'peer' })
      const started = peer
      shutdown.defer(async () => { await started.stop() })
    } catch (err) {
      await shutdown.unwind() // nothing half-started keeps running, the home is unlocked
      throw err
    }
    if (jobRef != null && backend != null && !shutdown.requested) {
      ctx.logger.info({ backend: backend.name, reason: backend.reason, unavailable: backend.tried }, 'TensorFlow.js backend')
      let job
      try {
        job = await materializeJob(ctx.home, peer.helia, jobRef, { signal: shutdown.signal })
      } catch (err) {
        if (shutdown.requested) { await shutdown.done; return }
        await shutdown.unwind()
        throw err
      }
      ctx.logger.info({ job: job.spec.id, specCid: job.specCid }, 'training job')
      let onChain: import('../../chain/trainer-gate.ts').TrainerChainView | undefined
      try {
        // A job on chain that requires a trainer bond is trained only by a registered peer (this node's peer id).
        const gate = await import('../../chain/trainer-gate.ts')
        await gate.checkTrainerBond(ctx.config.chain, ctx.home, job.spec.id, peer.peerId, ctx.logger)
        // Who may train it and its finalised anchors, as the chain says while it runs: peers its validators
        // slash drop out of the rounds, and catch-up adopts an anchored state without a quorum.
        onChain = await gate.openTrainerChainView(ctx.config.chain, ctx.home, job.spec.id, ctx.logger)
        if (onChain != null) shutdown.defer(onChain.close)
      } catch (err) {
        await shutdown.unwind()
        throw err
      }
      const attesting = await openChainAttester(ctx.config.chain, ctx.home, job.spec.id, ctx.logger)
      if (attesting != null) shutdown.defer(attesting.close)
      try {
        const { runJob } = await import('../../job/run-job.ts')
        const outcome = await runJob({ peer, home: ctx.home, job, logger: ctx.logger, signal: shutdown.signal, joinWaitMs: opts.joinWait * 1000, attester: attesting?.attester, roster: onChain?.roster, anchors: onChain?.anchors })
        if (!shutdown.requested) {
          ctx.logger.info({ event: 'job-done', job: job.spec.id, round: outcome.state.round, hash: outcome.weightsSha256, stateCid: outcome.stateCid, evalAccuracy: outcome.evaluation?.accuracy, evalLoss: outcome.evaluation?.loss }, 'job finished')
          await sleep(opts.linger * 1000, { signal: shutdown.signal }).catch(() => {}) // Ctrl-C ends the linger
        }
      } catch (err) {
        if (!shutdown.requested) {
          ctx.logger.error({ err: (err as Error).message }, 'training failed')
          process.exitCode = 1
        }
      }
      shutdown.request('job finished')
    }
    await shutdown.done
  })
}
