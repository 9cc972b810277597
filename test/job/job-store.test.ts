import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { unixfs } from '@helia/unixfs'
import { CID } from 'multiformats/cid'
import type { Host } from '../../node/network/host.ts'
import { pinLs } from '../../node/storage/pins.ts'
import { InvalidSpecError } from '../../node/training/model-spec.ts'
import { parseJobSpec } from '../../node/training/job-spec.ts'
import { JobNotFoundError, jobDir, loadJob, loadStatePointer, readJobSpecFile, saveJob, saveStatePointer } from '../../node/job/job-store.ts'
import { createJob, parseJobRef, resolveJob } from '../../node/job/job-ref.ts'
import { startHost, stopAll } from '../storage/helpers.ts'
import { removeDir } from '../helpers/temp-dir.ts'

const DATASET = 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'
const HASH = 'ab'.repeat(32)

function specInput (id: string): Record<string, unknown> {
  return { id, model: { kind: 'mlp', inputs: 8, hidden: [4], classes: 3 }, dataset: DATASET, rounds: 3, inner: { steps: 5 } }
}

async function catText (host: Host, cid: string): Promise<string> {
  const chunks: Uint8Array[] = []
  for await (const c of unixfs(host.helia).cat(CID.parse(cid), { offline: true })) chunks.push(c)
  return Buffer.concat(chunks).toString('utf8')
}

describe('job: the job store and job references', function () {
  this.timeout(60_000)
  let dir: string
  let home: string
  let a: Host
  let b: Host

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nearai-job-store-'))
    home = join(dir, 'home')
    a = await startHost()
    b = await startHost({ bootstrap: a })
  })

  after(async () => {
    await stopAll([b, a])
    await removeDir(dir)
  })

  describe('job records and state pointers', () => {
    it('saves and loads a job record, atomically (no temporary file left)', async () => {
      const spec = parseJobSpec(specInput('store-1'))
      const path = await saveJob(home, { spec, specCid: DATASET })
      assert.equal(path, join(home, 'jobs', 'store-1', 'job.json'))
      assert.deepEqual(await loadJob(home, 'store-1'), { spec, specCid: DATASET })
      assert.deepEqual(await readdir(join(home, 'jobs', 'store-1')), ['job.json'])
      assert.equal(await loadJob(home, 'store-unknown'), undefined)
    })

    it('saves and loads a state pointer, and refuses an invalid one', async () => {
      assert.equal(await loadStatePointer(home, 'store-1'), undefined)
      await saveStatePointer(home, 'store-1', { round: 2, cid: DATASET, weightsSha256: HASH })
      assert.deepEqual(await loadStatePointer(home, 'store-1'), { round: 2, cid: DATASET, weightsSha256: HASH })
      await saveStatePointer(home, 'store-1', { round: -1, cid: DATASET, weightsSha256: 'cd'.repeat(32) })
      assert.deepEqual(await loadStatePointer(home, 'store-1'), { round: -1, cid: DATASET, weightsSha256: 'cd'.repeat(32) }, 'replaced')
      await assert.rejects(saveStatePointer(home, 'store-1', { round: 3, cid: DATASET, weightsSha256: 'not-a-hash' }))
      assert.equal((await loadStatePointer(home, 'store-1'))?.round, -1, 'the refused pointer did not replace the saved one')
    })

    it('rejects job ids that are not safe folder names', async () => {
      for (const id of ['../escape', 'a/b', '', '.hidden', 'x'.repeat(65)]) {
        assert.throws(() => jobDir(home, id), (err: Error) => err instanceof TypeError && err.message.includes('invalid job id'), id)
        await assert.rejects(loadJob(home, id), TypeError)
        await assert.rejects(saveStatePointer(home, id, { round: 0, cid: DATASET, weightsSha256: HASH }), TypeError)
        await assert.rejects(loadStatePointer(home, id), TypeError)
      }
      assert.equal(jobDir(home, 'ok.id_1-x'), join(home, 'jobs', 'ok.id_1-x'))
    })

    it('names the file when job.json or state.json is corrupt', async () => {
      const folder = join(home, 'jobs', 'corrupt')
      await mkdir(folder, { recursive: true })
      const jobFile = join(folder, 'job.json')
      const stateFile = join(folder, 'state.json')

      await writeFile(jobFile, '{"spec": ')
      await assert.rejects(loadJob(home, 'corrupt'), (err: Error) => err.message.includes(jobFile) && /not valid JSON/.test(err.message))
      await writeFile(jobFile, JSON.stringify({ spec: { ...specInput('corrupt'), rounds: -2 }, specCid: DATASET }))
      await assert.rejects(loadJob(home, 'corrupt'), (err: Error) => err.message.includes(jobFile) && /not a valid job record/.test(err.message) && err.message.includes('spec.rounds'))
      await writeFile(jobFile, JSON.stringify({ spec: specInput('corrupt') }))
      await assert.rejects(loadJob(home, 'corrupt'), (err: Error) => err.message.includes(jobFile) && err.message.includes('specCid'))

      await writeFile(stateFile, 'round 3')
      await assert.rejects(loadStatePointer(home, 'corrupt'), (err: Error) => err.message.includes(stateFile) && /not valid JSON/.test(err.message))
      await writeFile(stateFile, JSON.stringify({ round: 3, cid: DATASET, weightsSha256: 'short' }))
      await assert.rejects(loadStatePointer(home, 'corrupt'), (err: Error) => err.message.includes(stateFile) && /not a valid state pointer/.test(err.message))
    })
  })

  describe('job spec files', () => {
    it('reads a valid spec and fills in the defaults', async () => {
      const path = join(dir, 'valid.json')
      await writeFile(path, JSON.stringify(specInput('spec-ok')))
      const spec = await readJobSpecFile(path)
      assert.equal(spec.id, 'spec-ok')
      assert.equal(spec.inner.steps, 5)
      assert.equal(spec.codec, 'fp16', 'defaults filled in')
      assert.equal(spec.minPeers, 2)
    })

    it('rejects invalid JSON, naming the file', async () => {
      const path = join(dir, 'broken.json')
      await writeFile(path, '{ "id": "x", ')
      await assert.rejects(readJobSpecFile(path), (err: Error) => err.message.includes(`job spec ${path} is not valid JSON`))
    })

    it('rejects an invalid spec, naming each bad field by its path', async () => {
      const path = join(dir, 'invalid.json')
      await writeFile(path, JSON.stringify({ ...specInput('spec-bad'), model: { kind: 'mlp', inputs: 8, hidden: [4, 0], classes: 3 }, rounds: 0, outer: { momentum: 1 } }))
      await assert.rejects(readJobSpecFile(path), (err: Error) => {
        assert.ok(err instanceof InvalidSpecError, `${err.name}: ${err.message}`)
        assert.match(err.message, /invalid job spec/)
        for (const field of ['model.hidden.1', 'rounds', 'outer.momentum']) assert.ok(err.message.includes(`${field}:`), `names ${field}: ${err.message}`)
        return true
      })
      await writeFile(path, JSON.stringify({ ...specInput('spec-bad'), epochs: 3 }))
      await assert.rejects(readJobSpecFile(path), (err: Error) => err instanceof InvalidSpecError && err.message.includes('epochs'))
    })

    it('reports a missing spec file as JobNotFoundError', async () => {
      await assert.rejects(readJobSpecFile(join(dir, 'missing.json')), (err: Error) => err instanceof JobNotFoundError && err.message.includes('missing.json'))
    })
  })

  describe('resolveJob', () => {
    it('resolves a spec file: validates it, adds it to IPFS pinned, and records it in the home', async () => {
      const path = join(dir, 'resolve-file.json')
      await writeFile(path, JSON.stringify(specInput('resolve-file')))
      const fromFile = await resolveJob(home, a.helia, path)
      assert.equal(fromFile.spec.id, 'resolve-file')
      assert.deepEqual(await loadJob(home, 'resolve-file'), fromFile)
      assert.deepEqual(parseJobSpec(JSON.parse(await catText(a, fromFile.specCid))), fromFile.spec, 'the CID holds the spec')
      assert.ok((await pinLs(a.helia)).some(p => p.cid.toString() === fromFile.specCid), 'the spec is pinned')
    })

    it('resolves a job id known to this node', async () => {
      const created = await createJob(home, a.helia, parseJobSpec(specInput('resolve-known')))
      assert.deepEqual(await resolveJob(home, a.helia, 'resolve-known'), created)
    })

    it('resolves a spec CID added on another connected node, and records and pins it here', async () => {
      const otherHome = join(dir, 'other-home')
      const created = await createJob(otherHome, a.helia, parseJobSpec(specInput('resolve-cid')))
      assert.equal(await b.helia.blockstore.has(CID.parse(created.specCid)), false, 'b does not hold the spec yet')
      const homeB = join(dir, 'home-b')
      const resolved = await resolveJob(homeB, b.helia, created.specCid, { timeoutMs: 15_000 })
      assert.deepEqual(resolved, created)
      assert.deepEqual(await loadJob(homeB, 'resolve-cid'), created)
      assert.ok((await pinLs(b.helia)).some(p => p.cid.toString() === created.specCid), 'pinned on b')
    })

    it('refuses a CID whose content is not a valid job spec', async () => {
      const cid = await unixfs(a.helia).addBytes(new TextEncoder().encode(JSON.stringify({ id: 'nope', model: { kind: 'rnn' } })))
      await assert.rejects(resolveJob(join(dir, 'home-c'), a.helia, cid.toString(), { timeoutMs: 5_000 }), (err: Error) => err instanceof InvalidSpecError && err.message.includes('model.kind'))
    })

    it('gives a clear JobNotFoundError for an unknown job id', async () => {
      await assert.rejects(resolveJob(home, a.helia, 'no-such-job'), (err: Error) => {
        assert.ok(err instanceof JobNotFoundError, `${err.name}: ${err.message}`)
        assert.match(err.message, /no job "no-such-job"/)
        assert.match(err.message, /nearai job create/)
        return true
      })
    })
  })

  describe('parseJobRef: --job checked before any node starts', () => {
    it('tells a known id, a spec file and a CID apart, reading and validating the file, without Helia', async () => {
      await saveJob(home, { spec: parseJobSpec(specInput('ref-known')), specCid: DATASET })
      assert.equal((await parseJobRef(home, 'ref-known')).kind, 'known')
      const path = join(dir, 'ref-file.json')
      await writeFile(path, JSON.stringify(specInput('ref-file')))
      const file = await parseJobRef(home, path)
      assert.ok(file.kind === 'file' && file.spec.id === 'ref-file')
      assert.equal(await loadJob(home, 'ref-file'), undefined, 'nothing is recorded until the node has the spec on IPFS')
      const cid = await parseJobRef(home, DATASET)
      assert.ok(cid.kind === 'cid' && cid.cid.toString() === DATASET)
    })

    it('refuses a missing file, an unknown id and a spec over the model size bound', async () => {
      await assert.rejects(parseJobRef(home, join(dir, 'missing.json')), (err: Error) => err instanceof JobNotFoundError && /missing\.json: no such file$/.test(err.message))
      await assert.rejects(parseJobRef(home, 'ref-unknown'), (err: Error) => err instanceof JobNotFoundError && /^no job "ref-unknown"/.test(err.message))
      const huge = join(dir, 'ref-huge.json')
      await writeFile(huge, JSON.stringify({ ...specInput('ref-huge'), model: { kind: 'mlp', inputs: 784, hidden: [1e9], classes: 10 } }))
      await assert.rejects(parseJobRef(home, huge), (err: Error) => err instanceof InvalidSpecError && /over the limit of 100,000,000/.test(err.message))
    })
  })
})
