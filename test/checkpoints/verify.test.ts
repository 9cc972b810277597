import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { createHost, type Host } from '../../node/network/host.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { publishCheckpoint } from '../../node/storage/checkpoints.ts'
import { modelArtifacts } from '../../node/storage/checkpoint-model.ts'
import { openDevChain, DevChainLedger, DEFAULT_CONTRACT_ACCOUNT, type DevChain } from '../../node/chain/index.ts'
import { verifyCheckpoint } from '../../node/checkpoints/verify.ts'
import { ensureContractBuilt } from '../../contracts/build.ts'
import { removeDir } from '../helpers/temp-dir.ts'

describe('checkpoint verify: IPFS content against the chain anchor', function () {
  this.timeout(120_000)
  let home: string
  let host: Host
  let chain: DevChain
  const ledgers: DevChainLedger[] = []

  before(async () => {
    await ensureContractBuilt()
    home = await mkdtemp(join(tmpdir(), 'nearai-verify-'))
    host = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: true, relayClient: false, maxConnections: 10 })
    chain = await openDevChain({ home })
    for (const accountId of ['validator-1.test', 'validator-2.test']) ledgers.push(new DevChainLedger({ chain, accountId, contractId: DEFAULT_CONTRACT_ACCOUNT, ownsChain: false }))
  })

  after(async () => {
    await host?.stop()
    await chain?.close()
    await removeDir(home)
  })

  async function checkpointOf (weights: number[], round: number): Promise<{ cid: any, sha: string }> {
    const model = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 2, kernelInitializer: 'zeros', biasInitializer: 'zeros' })] })
    model.setWeights([tf.tensor2d(weights.slice(0, 4), [2, 2]), tf.tensor1d(weights.slice(4, 6))])
    const published = await publishCheckpoint(host.helia, { artifacts: await modelArtifacts(model), job: 'verify-job', round, metrics: {}, provide: false })
    return { cid: published.cid, sha: published.manifest.weights.sha256 }
  }

  it('passes for the anchored checkpoint and fails, with the reason, for a changed weight, an unknown round and a non-final one', async () => {
    await ledgers[0].storageDeposit()
    await ledgers[1].storageDeposit()
    await ledgers[0].createJob({ job: 'verify-job', specCid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', evalCid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', validators: ['validator-1.test', 'validator-2.test'], threshold: 2 })
    const real = await checkpointOf([1, 2, 3, 4, 5, 6], 0)
    const claim = { job: 'verify-job', round: 0, checkpointCid: real.cid.toString(), weightsSha256: real.sha, contributionsRoot: '0'.repeat(64), evalLoss: 0.25 }
    await ledgers[0].attest(claim)
    const notFinal = await verifyCheckpoint(host.helia, ledgers[0], real.cid)
    assert.equal(notFinal.ok, false)
    assert.equal(!notFinal.ok && notFinal.reason, 'not-final')
    await ledgers[1].attest(claim)

    const good = await verifyCheckpoint(host.helia, ledgers[0], real.cid)
    assert.equal(good.ok, true, JSON.stringify(good))

    const tampered = await checkpointOf([1, 2, 3, 4, 5, 6.5], 0) // one weight changed, same job and round
    const bad = await verifyCheckpoint(host.helia, ledgers[0], tampered.cid)
    assert.equal(bad.ok, false)
    assert.equal(!bad.ok && bad.reason, 'hash-mismatch')

    const later = await checkpointOf([1, 2, 3, 4, 5, 6], 9)
    const unknown = await verifyCheckpoint(host.helia, ledgers[0], later.cid)
    assert.equal(!unknown.ok && unknown.reason, 'unknown-round')
  })
})
