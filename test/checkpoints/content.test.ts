import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { unixfs } from '@helia/unixfs'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../node/network/host.ts'
import { checkpointFiles, checkpointFolderCid, getCheckpoint, NotACheckpointError, publishCheckpoint } from '../../node/storage/checkpoints.ts'
import { loadCheckpointModel, modelArtifacts } from '../../node/storage/checkpoint-model.ts'
import { addDataset } from '../../node/storage/datasets.ts'
import { publishState } from '../../node/job/state-snapshot.ts'
import { buildModel } from '../../node/training/models.ts'
import { parseModelSpec } from '../../node/training/model-spec.ts'
import { flattenWeights } from '../../node/training/weights.ts'
import { parseCheckpointManifest } from '../../protocol/checkpoint-manifest.ts'
import { contributionsRoot } from '../../protocol/contributions.ts'
import { removeDir } from '../helpers/temp-dir.ts'

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const peer = (i: number): string => '12D3KooW' + B58[i % 58] + 'x'.repeat(43)
const MLP = parseModelSpec({ kind: 'mlp', inputs: 6, hidden: [5], activation: 'gelu', dropout: 0.1, classes: 3 })

describe('checkpoint content: the same state is the same CID, with its contributions inside', function () {
  this.timeout(60_000)
  let host: Host
  let dir: string

  before(async () => {
    await tf.setBackend('cpu')
    dir = await mkdtemp(join(tmpdir(), 'nearai-ckpt-content-'))
    host = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: true, relayClient: false, maxConnections: 10 })
  })

  after(async () => {
    await host?.stop()
    await removeDir(dir)
  })

  it('two peers holding the same state publish the same CID, however many models their process built before', async () => {
    // Three models in one process: TensorFlow.js numbers their layers dense_Dense1.., dense_Dense3.., dense_Dense5..
    const a = buildModel(MLP, 1)
    buildModel(MLP, 1).dispose()
    const b = buildModel(MLP, 1) // as every peer builds the job's model: the spec and its seed
    const weights = flattenWeights(a).map((w, i) => w + i * 1e-3) // trained: not the initial weights
    assert.notEqual(a.layers[1].name, b.layers[1].name, 'tfjs gave the two models different layer names')
    const state = { round: 4, weights, momentum: new Float32Array(weights.length).fill(0.5) }
    const contributions = [{ peer: peer(3), samples: 640 }, { peer: peer(1), samples: 512 }]
    const opts = { job: 'same-cid', parent: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi', provide: false, metrics: { samples: 1152 } }
    const fromA = await publishState(host.helia, a, state, { ...opts, contributions })
    const fromB = await publishState(host.helia, b, state, { ...opts, contributions: [...contributions].reverse() })
    assert.equal(fromB.cid.toString(), fromA.cid.toString(), 'same state, same contributions: same checkpoint CID')

    const fetched = await getCheckpoint(host.helia, fromA.cid, { offline: true })
    assert.deepEqual(fetched.manifest.contributions, [{ peer: peer(1), samples: 512 }, { peer: peer(3), samples: 640 }], 'written in peer-id order')
    assert.equal(contributionsRoot('same-cid', 4, fetched.manifest.contributions!), contributionsRoot('same-cid', 4, contributions), 'a validator derives the root from the checkpoint alone')
    const topology = new TextDecoder().decode(fetched.modelJsonBytes)
    assert.ok(!/Dense\d/.test(topology) && topology.includes('"dense_1"'), 'canonical layer names')
    // The canonical names load: same weights, same predictions.
    const loaded = await loadCheckpointModel(fetched)
    assert.deepEqual(Array.from(flattenWeights(loaded)), Array.from(weights))
    const x = tf.tensor2d([[0.1, -0.2, 0.3, 0.4, -0.5, 0.6]])
    assert.deepEqual(Array.from((loaded.predict(x) as tf.Tensor).dataSync()), Array.from((a.predict(x) as tf.Tensor).dataSync()))

    const other = await publishState(host.helia, a, state, { ...opts, contributions: [{ peer: peer(1), samples: 511 }, { peer: peer(3), samples: 640 }] })
    assert.notEqual(other.cid.toString(), fromA.cid.toString(), 'the CID commits to the contributions')
    assert.equal((await checkpointFolderCid(checkpointFiles(fetched))).toString(), fromA.cid.toString(), 'the folder CID recomputed from the fetched bytes')
    for (const m of [a, b, loaded]) m.dispose()
  })

  it('refuses contributions out of order or repeated in a checkpoint manifest', async () => {
    const published = await publishCheckpoint(host.helia, { artifacts: await modelArtifacts(buildModel(MLP, 3)), job: 'j', round: 0, provide: false, contributions: [{ peer: peer(2), samples: 1 }] })
    const good = { ...published.manifest }
    assert.doesNotThrow(() => parseCheckpointManifest(good))
    assert.throws(() => parseCheckpointManifest({ ...good, contributions: [{ peer: peer(2), samples: 1 }, { peer: peer(1), samples: 1 }] }), /peer-id order/)
    assert.throws(() => parseCheckpointManifest({ ...good, contributions: [{ peer: peer(1), samples: 1 }, { peer: peer(1), samples: 2 }] }), /peer-id order/)
    assert.throws(() => parseCheckpointManifest({ ...good, contributions: [{ peer: 'nobody', samples: 1 }] }), /peer id/)
    await assert.rejects(publishCheckpoint(host.helia, { artifacts: await modelArtifacts(buildModel(MLP, 3)), job: 'j', round: 0, provide: false, contributions: [{ peer: peer(1), samples: 1 }, { peer: peer(1), samples: 2 }] }), /more than once/)
  })

  it('says clearly that a dataset CID, a file or a folder without checkpoint.json is not a checkpoint', async () => {
    await writeFile(join(dir, 'tiny.csv'), 'label,a,b\n1,2,3\n0,1,1\n')
    const dataset = await addDataset(host.helia, join(dir, 'tiny.csv'), { name: 'tiny', license: 'MIT', shards: 1, provide: false })
    const fs = unixfs(host.helia)
    const file = await fs.addBytes(new TextEncoder().encode('{"not":"a checkpoint"}'))
    const folder = await fs.cp(file, await fs.addDirectory(), 'other.json')
    const cases: Array<[string, unknown, RegExp]> = [
      ['dataset manifest', dataset.cid, /is not a checkpoint: it is a dag-cbor block \(dataset manifests are dag-cbor: `nearai dataset show <cid>` shows one\)/],
      ['shard (raw file)', dataset.manifest.shards[0].cid, /is not a checkpoint: it is a raw block/],
      ['folder without checkpoint.json', folder, /is not a checkpoint: it has no checkpoint\.json/]
    ]
    for (const [what, cid, message] of cases) {
      await assert.rejects(getCheckpoint(host.helia, (typeof cid === 'string' ? (await import('multiformats/cid')).CID.parse(cid) : cid) as any, { timeoutMs: 5_000 }), (err: Error) => {
        assert.ok(err instanceof NotACheckpointError, `${what}: ${err.name}: ${err.message}`)
        assert.match(err.message, message, what)
        assert.doesNotMatch(err.message, /Object did not have key/, what)
        return true
      })
    }
  })
})
