/**
 * A validator of one job: a node that does not train. It follows the job's rounds topic, and for every
 * checkpoint round (every `checkpointEvery` rounds and the last) it finds the round's checkpoint CID,
 * fetches and checks the checkpoint, evaluates it deterministically on the job's evaluation set, and
 * attests (checkpoint CID, weights hash, contributions root, eval loss) on chain. Honest validators compute
 * the same claim from the same bytes, so the round's anchor finalizes once `threshold` of them attested.
 *
 *   setup     the job on chain must list this account as a validator and name the spec and evaluation set
 *             this node resolved; the evaluation set is fetched once
 *   follow    round announcements (gossip) say which CID holds each round's state; a checkpoint round's
 *             state is fetched (and pinned) as soon as it is announced, while its trainers still serve it
 *   sources   for a round it has not heard announced (it started late, restarted): the parent links of a
 *             later announced state's checkpoint.json, then the candidates other validators put on chain
 *   check     checkCheckpoint: files verified, job and round, model shape, deterministic eval
 *   attest    CheckpointAttester: the claim (CID, weights hash, contributions root and total, loss), with storage
 *             deposit, retries of transient chain errors, "already attested"
 *   score     RoundScorer: each contributor's committed update evaluated on a held-out batch; the consistently
 *             harmful reported on chain (round-scoring.ts)
 *   done      after the job's last round, unless `follow`
 *
 * It trusts the chain's job record (validator set, spec and evaluation-set CIDs) and content addressing;
 * announcements and other validators' candidates only point it at CIDs to check.
 */
import type { Logger } from 'pino'
import type { Helia } from '@helia/interface'
import { CID } from 'multiformats/cid'
import type { TypedGossip } from '../network/gossip.ts'
import { getCheckpoint, getCheckpointManifest } from '../storage/checkpoints.ts'
import { pinDag } from '../storage/pins.ts'
import { ContentNotFoundError, FetchTimeoutError } from '../storage/errors.ts'
import { backoff, MAX_TIMER_MS, sleep } from '../time/clock.ts'
import { CheckpointAttester, type AttestOutcome, type RetryOptions } from '../chain/auto-attest.ts'
import type { Ledger } from '../chain/ledger.ts'
import type { StoredJob } from '../job/job-store.ts'
import type { Samples } from '../training/local-trainer.ts'
import { jobRoundsTopic } from '../../protocol/topics.ts'
import { checkCheckpoint, CheckpointRejectedError, maxCheckpointBytes, type CheckpointClaim } from './checkpoint-check.ts'
import { loadEvaluationSet } from './evaluation-set.ts'
import { requireValidatable } from './job-requirements.ts'
import type { RoundScores } from './contribution-scores.ts'
import { RoundAnnouncements } from './round-announcements.ts'
import { RoundScorer } from './round-scoring.ts'

/** The parts of a PeerNode a validator uses. */
export interface ValidatorNode {
  readonly helia: Helia
  readonly gossip: TypedGossip
  joinJob: (job: string) => void
  leaveJob: (job: string) => void
  rendezvous: (topic: string, options?: { signal?: AbortSignal }) => Promise<unknown>
}

export interface JobValidatorOptions {
  node: ValidatorNode
  ledger: Ledger
  job: StoredJob
  logger: Logger
  signal?: AbortSignal
  /** Keep running after the job's last round (serving the checkpoints it pinned) until aborted. */
  follow?: boolean
  /** Bound on each fetch of a checkpoint or the evaluation set (ms, default 60 s). */
  fetchTimeoutMs?: number
  /** How often to look again (chain, retries) while a round has no checkpoint to check (ms, default 10 s). */
  pollMs?: number
  retry?: Partial<RetryOptions>
  /** How much a contributor's update may raise the held-out loss (relative) before it counts as harmful (default 0.05). */
  harmTolerance?: number
  /** Called after each round is done (attested now or before). */
  onRound?: (done: RoundDone) => void
}

export interface RoundDone {
  round: number
  claim?: CheckpointClaim
  outcome: AttestOutcome
  /** Each contributor's verdict (round-scoring.ts), when the round was scored. */
  scores?: RoundScores
}

export interface ValidatorResult { rounds: RoundDone[] }

function sourceKey (s: { cid: string, weightsSha256?: string }): string {
  return `${s.cid}#${s.weightsSha256 ?? ''}`
}

/** The chain's job does not let this node validate it: not on chain, not a validator, another spec. */
export class ValidatorSetupError extends Error {
  override name = 'ValidatorSetupError'
}

/** Checkpoint rounds of a job: every `checkpointEvery` rounds and the last one (as the round loop publishes). */
export function checkpointRounds (rounds: number, every: number): number[] {
  const out: number[] = []
  for (let r = 0; r < rounds; r++) if ((every > 0 && (r + 1) % every === 0) || r === rounds - 1) out.push(r)
  return out
}

export class JobValidator {
  private readonly opts: JobValidatorOptions
  private readonly log: Logger
  private readonly announcements: RoundAnnouncements
  private readonly attester: CheckpointAttester
  private readonly signal: AbortSignal
  private readonly fetchTimeoutMs: number
  private readonly pollMs: number
  /**
   * Sources (CID and the weights hash it was said to have) whose content is not a valid checkpoint of their
   * round: never fetched again. Keyed with the hash: a CID announced with a wrong hash may still be the round's.
   */
  private readonly rejected = new Set<string>()
  private readonly prefetched = new Map<string, Promise<void>>()
  private readonly wakers = new Set<() => void>()
  private evalSet?: Samples
  private scorer?: RoundScorer

  constructor (opts: JobValidatorOptions) {
    this.opts = opts
    const spec = opts.job.spec
    this.log = opts.logger.child({ component: 'validator', job: spec.id, account: opts.ledger.accountId })
    this.announcements = new RoundAnnouncements(spec.id)
    this.attester = new CheckpointAttester({ ledger: opts.ledger, job: spec.id, logger: opts.logger, retry: opts.retry })
    this.signal = opts.signal ?? new AbortController().signal
    this.fetchTimeoutMs = opts.fetchTimeoutMs ?? 60_000
    this.pollMs = opts.pollMs ?? 10_000
  }

  async run (): Promise<ValidatorResult> {
    const { spec } = this.opts.job
    const { node } = this.opts
    await this.checkChainJob()
    this.evalSet = await this.loadEvalSet()
    this.scorer = new RoundScorer({ helia: node.helia, spec, evalSet: this.evalSet, ledger: this.opts.ledger, logger: this.log, fetchTimeoutMs: this.fetchTimeoutMs, signal: this.signal, tolerance: this.opts.harmTolerance })
    this.log.info({ event: 'validator-ready', evalSamples: this.evalSet.count, evalDataset: spec.evalDataset }, 'evaluation set loaded; following the job')

    const rounds = checkpointRounds(spec.rounds, spec.checkpointEvery)
    const pending = new Set(rounds)
    this.announcements.start(node.gossip)
    const stopListening = this.announcements.onAnnouncement((round) => {
      for (const w of [...this.wakers]) w()
      if (pending.has(round)) this.prefetch(round)
    })
    node.joinJob(spec.id)
    const meet = (): void => { void node.rendezvous(jobRoundsTopic(spec.id), { signal: AbortSignal.any([this.signal, AbortSignal.timeout(20_000)]) }).catch(() => {}) }
    meet()
    const meetTimer = setInterval(meet, 30_000)
    meetTimer.unref()

    const done: RoundDone[] = []
    try {
      for (const round of rounds) {
        if (this.signal.aborted) break
        const result = await this.validateRound(round)
        if (result == null) break // aborted
        pending.delete(round)
        done.push(result)
        this.opts.onRound?.(result)
      }
      if (!this.signal.aborted) {
        this.log.info({ event: 'validator-done', rounds: done.map(d => d.round) }, `validated every checkpoint round of job ${spec.id}`)
        if (this.opts.follow === true) {
          this.log.info('following: serving the checkpoints it pinned until stopped')
          await sleep(MAX_TIMER_MS, { signal: this.signal }).catch(() => {})
        }
      }
      return { rounds: done }
    } finally {
      clearInterval(meetTimer)
      stopListening()
      this.announcements.stop()
      node.leaveJob(spec.id)
      await Promise.allSettled(this.prefetched.values())
    }
  }

  /** The job as the chain has it must be the one this node resolved, with this account as a validator. */
  private async checkChainJob (): Promise<void> {
    const { spec, specCid } = this.opts.job
    const { ledger } = this.opts
    const evalCid = requireValidatable(spec)
    const job = await ledger.getJob(spec.id)
    if (job == null) throw new ValidatorSetupError(`job ${spec.id} is not on chain (contract ${ledger.contractId}): create it with \`nearai job create --spec <file> --validators ...\``)
    if (!job.validators.includes(ledger.accountId)) throw new ValidatorSetupError(`${ledger.accountId} is not a validator of job ${spec.id} (its validators: ${job.validators.join(', ')})`)
    if (job.spec_cid !== specCid) throw new ValidatorSetupError(`job ${spec.id} on chain has spec ${job.spec_cid}, this node resolved spec ${specCid}: validate the job by its id or its spec CID from the chain`)
    if (job.eval_cid !== evalCid) throw new ValidatorSetupError(`job ${spec.id} on chain names evaluation set ${String(job.eval_cid)}, its spec ${evalCid}`)
    this.log.info({ threshold: job.threshold, validators: job.validators, specCid, evalCid }, 'validating job')
  }

  private async loadEvalSet (): Promise<Samples> {
    const { spec } = this.opts.job
    for (let attempt = 1; ; attempt++) {
      try {
        return await loadEvaluationSet(this.opts.node.helia, spec, { timeoutMs: this.fetchTimeoutMs, signal: this.signal })
      } catch (err) {
        if (this.signal.aborted || !(err instanceof ContentNotFoundError || err instanceof FetchTimeoutError)) throw err
        const delay = backoff(attempt + 1, { initialMs: 1000, maxMs: 30_000 })
        this.log.warn({ attempt, retryInMs: delay, err: (err as Error).message }, 'could not fetch the evaluation set; retrying')
        await sleep(delay, { signal: this.signal })
      }
    }
  }

  /** Fetches (and pins) a checkpoint round's announced state while its trainers still serve it. */
  private prefetch (round: number): void {
    const cid = this.announcements.get(round)?.cids[0]
    if (cid == null || this.prefetched.has(cid)) return
    this.prefetched.set(cid, (async () => {
      try {
        const parsed = CID.parse(cid)
        // Bounded like the check itself: the blocks land in this node's blockstore, then the pin keeps them.
        await getCheckpoint(this.opts.node.helia, parsed, { maxBytes: maxCheckpointBytes(this.opts.job.spec), timeoutMs: this.fetchTimeoutMs, signal: this.signal })
        await pinDag(this.opts.node.helia, parsed, { offline: true, signal: this.signal, metadata: { kind: 'checkpoint', job: this.opts.job.spec.id, round } })
        this.log.debug({ round, cid }, 'announced checkpoint fetched and pinned')
      } catch (err) {
        this.log.debug({ round, cid, err: (err as Error).message }, 'prefetching the announced checkpoint failed')
      }
    })())
  }

  /** Validates one checkpoint round until it is attested (now or before); undefined when aborted. */
  private async validateRound (round: number): Promise<RoundDone | undefined> {
    const { spec } = this.opts.job
    const mine = await this.earlierAttestation(round)
    if (mine != null) return mine
    let claim: CheckpointClaim | undefined
    let wait = 1000
    while (!this.signal.aborted) {
      claim ??= await this.findAndCheck(round)
      if (claim != null) {
        const outcome = await this.attester.attest({ round, checkpointCid: claim.checkpointCid, weightsSha256: claim.weightsSha256, contributions: claim.contributions, evalLoss: claim.evaluation.loss })
        this.logOutcome(claim, outcome)
        if (outcome.outcome === 'attested' || outcome.outcome === 'already') {
          // After the attestation: scoring fetches every contributor's update and must not delay the anchor.
          const scores = await this.scorer!.score(claim).catch((err: Error) => { this.log.warn({ round, err: err.message }, 'scoring the round failed'); return undefined })
          return { round, claim, outcome, scores }
        }
        if (outcome.outcome !== 'failed') throw new ValidatorSetupError(`the chain no longer lets ${this.opts.ledger.accountId} attest job ${spec.id}: ${outcome.outcome}`)
      }
      // Nothing to check yet, or the chain call failed: wait for news (an announcement) or the next poll.
      await this.waitForNews(claim == null ? this.pollMs : Math.min(this.pollMs, wait))
      wait = Math.min(this.pollMs, wait * 2)
    }
    return undefined
  }

  /** This account's attestation of `round` if it made one before (an earlier run). */
  private async earlierAttestation (round: number): Promise<RoundDone | undefined> {
    try {
      const mine = (await this.opts.ledger.getAttestations(this.opts.job.spec.id, round)).find(a => a.validator === this.opts.ledger.accountId)
      if (mine == null) return undefined
      const anchors = await this.opts.ledger.getAnchor(this.opts.job.spec.id, round)
      this.log.info({ event: 'validator-round', round, checkpointCid: mine.checkpoint_cid, final: anchors?.final != null }, 'round already attested by this account')
      return { round, outcome: { outcome: 'already', round, contributionsRoot: mine.contributions_root, contributionsTotal: mine.contributions_total, anchors, final: anchors?.final != null, sameClaim: null } }
    } catch (err) {
      this.log.warn({ round, err: (err as Error).message }, 'could not read this account\'s earlier attestations; checking the round')
      return undefined
    }
  }

  /** The CIDs that may hold `round`'s checkpoint, best first, each with the weights hash it must have if known. */
  private async sources (round: number): Promise<Array<{ cid: string, weightsSha256?: string, from: string }>> {
    const out: Array<{ cid: string, weightsSha256?: string, from: string }> = []
    const announced = this.announcements.get(round)
    for (const cid of announced?.cids ?? []) out.push({ cid, weightsSha256: announced!.weightsSha256, from: 'announcement' })
    if (out.length === 0) {
      // Started late: a later announced state's checkpoint.json names its parent, and so on back to this round.
      for (const later of this.announcements.later(round).slice(0, 1)) {
        const cid = later.cids[0]
        if (cid == null) continue
        const found = await this.walkParents(cid, round, later.round - round + 1)
        if (found != null) out.push({ cid: found, from: `parent links from round ${later.round}` })
      }
    }
    try {
      const anchors = await this.opts.ledger.getAnchor(this.opts.job.spec.id, round)
      const candidates = [...(anchors?.candidates ?? [])].sort((a, b) => b.attesters.length - a.attesters.length)
      // Without their claimed hash: this validator computes its own (another's claim may be the wrong part).
      for (const c of candidates) out.push({ cid: c.checkpoint_cid, from: 'chain candidate' })
    } catch (err) {
      this.log.debug({ round, err: (err as Error).message }, 'could not read the round\'s candidates on chain')
    }
    const seen = new Set<string>()
    return out.filter(s => {
      const key = sourceKey(s)
      if (this.rejected.has(key) || seen.has(key)) return false
      seen.add(key)
      return true
    })
  }

  /** Follows checkpoint.json parent links from `cid` back to the state of `round`; undefined if the chain breaks. */
  private async walkParents (cid: string, round: number, maxSteps: number): Promise<string | undefined> {
    let at: string | null = cid
    for (let step = 0; at != null && step <= maxSteps && !this.signal.aborted; step++) {
      try {
        const { manifest } = await getCheckpointManifest(this.opts.node.helia, CID.parse(at), { timeoutMs: this.fetchTimeoutMs, signal: this.signal })
        if (manifest.job !== this.opts.job.spec.id) return undefined
        if (manifest.round === round) return at
        if (manifest.round < round) return undefined
        at = manifest.parent
      } catch (err) {
        this.log.debug({ round, cid: at, err: (err as Error).message }, 'parent link could not be followed')
        return undefined
      }
    }
    return undefined
  }

  /** Checks the round's candidate checkpoints in order; the first that passes is the claim. */
  private async findAndCheck (round: number): Promise<CheckpointClaim | undefined> {
    const unreachable = new Set<string>() // in this pass: one timed-out fetch of a CID is enough
    for (const source of await this.sources(round)) {
      if (this.signal.aborted) return undefined
      if (unreachable.has(source.cid)) continue
      const started = Date.now()
      this.log.info({ event: 'validator-check', round, cid: source.cid, from: source.from }, 'checking checkpoint')
      try {
        const claim = await checkCheckpoint(this.opts.node.helia, CID.parse(source.cid), {
          spec: this.opts.job.spec, evalSet: this.evalSet!, round, expectedWeightsSha256: source.weightsSha256, timeoutMs: this.fetchTimeoutMs, signal: this.signal
        })
        this.log.info({
          event: 'validator-verified', round, cid: claim.checkpointCid, hash: claim.weightsSha256, evalLoss: claim.evaluation.loss,
          evalAccuracy: claim.evaluation.accuracy, evalSamples: claim.evaluation.samples, contributors: claim.contributions.length, ms: Date.now() - started
        }, 'checkpoint verified and evaluated')
        await pinDag(this.opts.node.helia, CID.parse(claim.checkpointCid), { offline: true, signal: this.signal, metadata: { kind: 'checkpoint', job: this.opts.job.spec.id, round } })
          .catch((err: Error) => { this.log.debug({ round, err: err.message }, 'pinning the checked checkpoint failed') })
        return claim
      } catch (err) {
        if (this.signal.aborted) return undefined
        const retry = err instanceof CheckpointRejectedError ? err.retry : true
        if (!retry) this.rejected.add(sourceKey(source))
        else unreachable.add(source.cid)
        this.log.warn({ event: 'validator-rejected', round, cid: source.cid, from: source.from, retry, err: (err as Error).message }, retry ? 'checkpoint not reachable; trying again later' : 'checkpoint rejected: not attesting it')
      }
    }
    return undefined
  }

  private logOutcome (claim: CheckpointClaim, o: AttestOutcome): void {
    const line = { event: 'validator-round', round: claim.round, checkpointCid: claim.checkpointCid, evalLoss: claim.evaluation.loss, outcome: o.outcome }
    if (o.outcome === 'attested') {
      this.log.info({ ...line, contributionsRoot: o.contributionsRoot, contributionsTotal: o.contributionsTotal, final: o.final, finalCid: o.anchors.final?.checkpoint_cid, attesters: o.anchors.final?.attesters, dissent: o.anchors.dissent.map(d => d.validator) }, o.final ? 'attested; the round is final' : 'attested; waiting for the other validators')
    } else if (o.outcome === 'already') {
      this.log[o.sameClaim === false ? 'warn' : 'info']({ ...line, final: o.final, sameClaim: o.sameClaim }, 'round already attested by this account')
    } else if (o.outcome === 'failed') {
      this.log.warn({ ...line, err: o.error.message }, 'attestation failed; trying again')
    }
  }

  private async waitForNews (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      const wake = (): void => { clearTimeout(timer); this.wakers.delete(wake); this.signal.removeEventListener('abort', wake); resolve() }
      const timer = setTimeout(wake, ms)
      this.wakers.add(wake)
      this.signal.addEventListener('abort', wake, { once: true })
    })
  }
}
