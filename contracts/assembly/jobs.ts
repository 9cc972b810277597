// Training jobs: the record `j/<job>`, its view, and the one job creation both `create_job` and a passed DAO
// `train` proposal go through (so a DAO job is exactly what create_job would have stored).
import * as env from './env'
import { U128 } from './u128'
import { JValue, Kind, ObjWriter, quote, strArray } from './json'
import { panic, storageHas, storageReadString, storageWriteString } from './near'
import { argCid, argIndex, argJobId, argYocto, field, parseStored, validAccount } from './args'
import { chargeStorage, emit, ensureVersion } from './storage'

export const MAX_VALIDATORS = 100
/** Upper bound for a job's trainer bond: 10^6 NEAR. */
export const MAX_TRAINER_BOND = U128.parse('1000000000000000000000000000000')!
/** Default unbonding delay: ~1 day of NEAR blocks (~1 block per second). */
export const DEFAULT_UNBONDING_BLOCKS: u64 = 86400
/** Longest unbonding delay a job may set: ~1 year of blocks. */
export const MAX_UNBONDING_BLOCKS: u64 = 31536000

export function loadJob (job: string): JValue | null {
  const t = storageReadString('j/' + job)
  return t == null ? null : parseStored(t)
}

export function jobExists (job: string): bool { return storageHas('j/' + job) }

function latestFinal (job: string): string {
  const l = storageReadString('l/' + job)
  return l == null ? 'null' : l
}

export function jobBond (rec: JValue): U128 {
  const b = rec.get('trainer_bond')
  if (b == null) return new U128() // jobs stored before bonds existed are open
  const parsed = U128.parse(b.text)
  if (parsed == null) { panic('corrupt job record: trainer_bond'); return new U128() }
  return parsed
}

export function jobUnbonding (rec: JValue): u64 {
  const u = rec.get('unbonding_blocks')
  return u == null ? DEFAULT_UNBONDING_BLOCKS : <u64>parseInt(u.text)
}

export function jobView (job: string, rec: JValue): string {
  const validators = field(rec, 'validators')
  const evalCid = rec.get('eval_cid')
  const names: string[] = []
  for (let i = 0; i < validators.items.length; i++) names.push(validators.items[i].text)
  return new ObjWriter()
    .str('job', job)
    .str('owner', field(rec, 'owner').text)
    .str('spec_cid', field(rec, 'spec_cid').text)
    .raw('eval_cid', evalCid == null ? 'null' : quote(evalCid.text))
    .raw('validators', strArray(names))
    .raw('threshold', field(rec, 'threshold').text)
    .raw('created_at_block', field(rec, 'created_at_block').text)
    .raw('latest_final_round', latestFinal(job))
    .str('trainer_bond', jobBond(rec).toString())
    .raw('unbonding_blocks', jobUnbonding(rec).toString())
    .toString()
}

/** The arguments of create_job, validated: what a job is made of before it has an owner and a block. */
export class JobSpec {
  constructor (
    public job: string, public specCid: string, public evalCid: string, public validators: string[],
    public threshold: u64, public bond: U128, public unbonding: u64
  ) {}

  /** The same object create_job takes (a DAO `train` proposal stores it and reads it back with parseJobSpec). */
  json (): string {
    return new ObjWriter().str('job', this.job).str('spec_cid', this.specCid).str('eval_cid', this.evalCid)
      .raw('validators', strArray(this.validators)).raw('threshold', this.threshold.toString())
      .str('trainer_bond', this.bond.toString()).raw('unbonding_blocks', this.unbonding.toString()).toString()
  }
}

/** Reads and checks create_job's arguments `{ job, spec_cid, eval_cid, validators, threshold, trainer_bond?, unbonding_blocks? }`. */
export function parseJobSpec (args: JValue): JobSpec {
  const job = argJobId(args)
  const specCid = argCid(args, 'spec_cid')
  // Validators attest an evaluation loss: without a named evaluation set there is nothing they could agree on.
  if (args.get('eval_cid') == null) panic('missing argument: eval_cid (the CID of the evaluation dataset validators evaluate each checkpoint on)')
  const evalCid = argCid(args, 'eval_cid')
  const vs = field(args, 'validators')
  if (vs.kind != Kind.Arr || vs.items.length == 0) panic('validators must be a non-empty array of account ids')
  if (vs.items.length > MAX_VALIDATORS) panic('at most 100 validators')
  const validators: string[] = []
  for (let i = 0; i < vs.items.length; i++) {
    const v = vs.items[i]
    if (v.kind != Kind.Str || !validAccount(v.text)) panic('validators must be a non-empty array of account ids')
    if (validators.includes(v.text)) panic('duplicate validator ' + v.text)
    validators.push(v.text)
  }
  const threshold = argIndex(args, 'threshold')
  if (threshold < 1 || threshold > <u64>validators.length) panic('threshold must be between 1 and the number of validators')
  // Trainer bonds: 0 (the default) is an open job; the unbonding delay only matters for a bonded one.
  const bond = args.get('trainer_bond') == null ? new U128() : argYocto(args, 'trainer_bond')
  if (bond.cmp(MAX_TRAINER_BOND) > 0) panic('trainer_bond must be at most ' + MAX_TRAINER_BOND.toString() + ' yoctoNEAR (10^6 NEAR)')
  const unbonding = args.get('unbonding_blocks') == null ? DEFAULT_UNBONDING_BLOCKS : argIndex(args, 'unbonding_blocks')
  if (unbonding < 1 || unbonding > MAX_UNBONDING_BLOCKS) panic('unbonding_blocks must be between 1 and ' + MAX_UNBONDING_BLOCKS.toString())
  return new JobSpec(job, specCid, evalCid, validators, threshold, bond, unbonding)
}

/**
 * Stores the job with `owner` as its owner, charges the bytes to `payer`'s storage balance, emits `job_created`
 * and returns the job's view. Panics when the job id is taken.
 */
export function createJob (spec: JobSpec, owner: string, payer: string): string {
  if (jobExists(spec.job)) panic('job ' + spec.job + ' already exists')
  ensureVersion()
  const before = env.storage_usage()
  const rec = new ObjWriter()
    .str('owner', owner)
    .str('spec_cid', spec.specCid)
    .str('eval_cid', spec.evalCid)
    .raw('validators', strArray(spec.validators))
    .raw('threshold', spec.threshold.toString())
    .raw('created_at_block', env.block_index().toString())
    .str('trainer_bond', spec.bond.toString())
    .raw('unbonding_blocks', spec.unbonding.toString())
    .toString()
  storageWriteString('j/' + spec.job, rec)
  chargeStorage(payer, before)
  const view = jobView(spec.job, parseStored(rec))
  emit('job_created', view)
  return view
}
