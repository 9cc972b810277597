import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { unixfs } from '@helia/unixfs'
import all from 'it-all'
import type { CID } from 'multiformats/cid'
import { createHost, type Host } from '../../node/network/host.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { getCheckpoint, publishCheckpoint } from '../../node/storage/checkpoints.ts'
import { modelArtifacts } from '../../node/storage/checkpoint-model.ts'
import { openDevChain, DevChainLedger, DEFAULT_CONTRACT_ACCOUNT, type DevChain } from '../../node/chain/index.ts'
import { anchoredFrom, verifyCheckpoint, verifyCheckpointFolder } from '../../node/checkpoints/verify.ts'
import { writeCheckpointFolder } from '../../node/checkpoints/folder.ts'
import { ensureContractBuilt } from '../../contracts/build.ts'
import { removeDir } from '../helpers/temp-dir.ts'

const SPEC_CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const HASH = /[0-9a-f]{64}/.source

describe('checkpoint verify: the whole checkpoint against the chain anchor', function () {
  this.timeout(120_000)
  let home: string
  let host: Host
  let chain: DevChain
  const ledgers: DevChainLedger[] = []

  before(async () => {
    await ensureContractBuilt()
    await tf.setBackend('cpu')
    home = await mkdtemp(join(tmpdir(), 'nearai-verify-'))
    host = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: true, relayClient: false, maxConnections: 10 })
    chain = await openDevChain({ home })
    for (const accountId of ['validator-1.test', 'validator-2.test']) ledgers.push(new DevChainLedger({ chain, accountId, contractId: DEFAULT_CONTRACT_ACCOUNT, ownsChain: false }))
    await ledgers[0].storageDeposit()
    await ledgers[1].storageDeposit()
    await ledgers[0].createJob({ job: 'verify-job', specCid: SPEC_CID, evalCid: SPEC_CID, validators: ['validator-1.test', 'validator-2.test'], threshold: 2 })
  })

  after(async () => {
    await host?.stop()
    chain?.close()
    await removeDir(home)
  })

  function model (weights: number[], activation: 'relu' | 'linear' = 'linear'): tf.LayersModel {
    const m = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 2, activation, kernelInitializer: 'zeros', biasInitializer: 'zeros' })] })
    m.setWeights([tf.tensor2d(weights.slice(0, 4), [2, 2]), tf.tensor1d(weights.slice(4, 6))])
    return m
  }

  async function checkpointOf (m: tf.LayersModel, round: number): Promise<{ cid: CID, sha: string }> {
    const published = await publishCheckpoint(host.helia, { artifacts: await modelArtifacts(m), job: 'verify-job', round, metrics: {}, provide: false })
    return { cid: published.cid, sha: published.manifest.weights.sha256 }
  }

  async function anchor (round: number, c: { cid: CID, sha: string }): Promise<void> {
    const claim = { job: 'verify-job', round, checkpointCid: c.cid.toString(), weightsSha256: c.sha, contributionsRoot: '0'.repeat(64), contributionsTotal: 64, evalLoss: 0.25 }
    for (const l of ledgers) await l.attest(claim)
  }

  it('passes for the anchored checkpoint and fails, with the reason, for a changed weight, an unknown round and a non-final one', async () => {
    const real = await checkpointOf(model([1, 2, 3, 4, 5, 6]), 0)
    const claim = { job: 'verify-job', round: 0, checkpointCid: real.cid.toString(), weightsSha256: real.sha, contributionsRoot: '0'.repeat(64), contributionsTotal: 64, evalLoss: 0.25 }
    await ledgers[0].attest(claim)
    const notFinal = await verifyCheckpoint(host.helia, ledgers[0], real.cid)
    assert.equal(!notFinal.ok && notFinal.reason, 'not-final')
    await ledgers[1].attest(claim)

    const good = await verifyCheckpoint(host.helia, ledgers[0], real.cid)
    assert.ok(good.ok, JSON.stringify(good))
    assert.equal(good.checkpointCid, real.cid.toString())
    assert.deepEqual(good.attesters, ['validator-1.test', 'validator-2.test'])

    const tampered = await checkpointOf(model([1, 2, 3, 4, 5, 6.5]), 0) // one weight changed, same job and round
    const bad = await verifyCheckpoint(host.helia, ledgers[0], tampered.cid)
    assert.ok(!bad.ok)
    assert.equal(bad.reason, 'hash-mismatch')
    assert.match(bad.message, new RegExp(`group1-shard1of1\\.bin differs: sha256 ${HASH} here, ${HASH} in the anchored checkpoint`))
    assert.equal(bad.anchoredCid, real.cid.toString())

    const later = await checkpointOf(model([1, 2, 3, 4, 5, 6]), 9)
    const unknown = await verifyCheckpoint(host.helia, ledgers[0], later.cid)
    assert.equal(!unknown.ok && unknown.reason, 'unknown-round')
  })

  it('fails a checkpoint whose model.json was tampered with (same weights), naming model.json', async () => {
    const real = await checkpointOf(model([1, 0, 0, 1, 0, 0]), 1)
    await anchor(1, real)
    // The same weights under another model.json (relu instead of linear): a self-consistent checkpoint.
    const forged = await checkpointOf(model([1, 0, 0, 1, 0, 0], 'relu'), 1)
    assert.equal(forged.sha, real.sha, 'the weights are the anchored ones')
    const out = await verifyCheckpoint(host.helia, ledgers[0], forged.cid)
    assert.ok(!out.ok)
    assert.equal(out.reason, 'content-mismatch')
    assert.match(out.message, new RegExp(`model\\.json differs: sha256 ${HASH} here, ${HASH} in the anchored checkpoint`))
    assert.deepEqual(out.differences?.map(d => d.path), ['model.json', 'checkpoint.json'], 'model.json, and the checkpoint.json that lists its hash')
    assert.doesNotMatch(out.message, /group1-shard/, 'the weights are not reported: they match')

    // model.json edited inside the anchored folder (same length), its checkpoint.json left as it was: caught while fetching.
    const fs = unixfs(host.helia)
    const original = Buffer.concat(await all(fs.cat(real.cid, { path: 'model.json' }))).toString('utf8')
    const edited = original.replace('"linear"', '"relu"  ')
    assert.equal(edited.length, original.length)
    const swapped = await fs.cp(await fs.addBytes(new TextEncoder().encode(edited)), real.cid, 'model.json', { force: true })
    const inside = await verifyCheckpoint(host.helia, ledgers[0], swapped)
    assert.ok(!inside.ok)
    assert.equal(inside.reason, 'content-mismatch')
    assert.match(inside.message, new RegExp(`model\\.json of checkpoint ${swapped.toString()} \\(\\S+\\) has SHA-256 ${HASH}, its manifest says ${HASH}`))
  })

  it('verifies a folder written by checkpoint get, and names the file changed on disk', async () => {
    const real = await checkpointOf(model([2, 0, 0, 2, 1, 1]), 2)
    await anchor(2, real)
    const dir = join(home, 'ckpt')
    await writeCheckpointFolder(await getCheckpoint(host.helia, real.cid, { offline: true }), dir)
    const anchored = anchoredFrom(host.helia, { timeoutMs: 10_000 })
    const ok = await verifyCheckpointFolder(dir, ledgers[0], anchored)
    assert.ok(ok.ok, JSON.stringify(ok))
    assert.equal(ok.checkpointCid, real.cid.toString(), 'the folder re-hashes to the anchored CID')

    const modelJson = join(dir, 'model.json')
    const original = await readFile(modelJson, 'utf8')
    await writeFile(modelJson, original.replace('"linear"', '"relu"'))
    const tampered = await verifyCheckpointFolder(dir, ledgers[0], anchored)
    assert.ok(!tampered.ok)
    assert.equal(tampered.reason, 'content-mismatch')
    assert.match(tampered.message, new RegExp(`^folder ${dir} \\(CID \\S+\\) is not the checkpoint anchored for job verify-job round 2 \\(${real.cid.toString()}\\): model\\.json differs: sha256 ${HASH} here, ${HASH} in the anchored checkpoint$`))
    await writeFile(modelJson, original)

    await writeFile(join(dir, 'notes.txt'), 'hello')
    const extra = await verifyCheckpointFolder(dir, ledgers[0], anchored)
    assert.ok(!extra.ok)
    assert.match(extra.message, /notes\.txt is not in the anchored checkpoint/)
    await rm(join(dir, 'notes.txt'))

    await rm(join(dir, 'group1-shard1of1.bin'))
    const missing = await verifyCheckpointFolder(dir, ledgers[0], anchored)
    assert.ok(!missing.ok)
    assert.equal(missing.reason, 'hash-mismatch')
    assert.match(missing.message, /group1-shard1of1\.bin is missing here/)

    const none = await verifyCheckpointFolder(join(home, 'nope'), ledgers[0], anchored)
    assert.ok(!none.ok && none.reason === 'not-a-checkpoint' && /no folder/.test(none.message))
  })
})
