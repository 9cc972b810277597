import assert from 'node:assert/strict'
import { mkdtemp, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerNode } from '../../node/network/peer-node.ts'
import { startTestNode } from '../helpers/network.ts'
import { runCli, startCli } from '../helpers/cli.ts'
import { removeDir } from '../helpers/temp-dir.ts'
import { sleep } from '../../node/time/clock.ts'

describe('a restarted node keeps its PeerId and finds the network again', function () {
  this.timeout(180_000)
  let boot: PeerNode
  let observer: PeerNode
  let home: string

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'nearai-restart-'))
    boot = await startTestNode('bootstrap')
    observer = await startTestNode('peer', { bootstrap: [boot.multiaddrs[0]] })
  })

  after(async () => {
    await observer?.stop()
    await boot?.stop()
    await removeDir(home)
  })

  /** A node keeps its configured port across restarts, as a deployed node does. */
  async function freePort (): Promise<number> {
    const server = createServer()
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    await new Promise(resolve => server.close(resolve))
    return port
  }

  /** The node's addresses as the observer finds them through the DHT, once they include one of `current`. */
  async function findWithin (peer: ReturnType<typeof peerIdFromString>, current: string[], ms: number): Promise<string[]> {
    const deadline = Date.now() + ms
    let found: string[] = []
    while (Date.now() < deadline) {
      try {
        const info = await observer.libp2p.peerRouting.findPeer(peer, { signal: AbortSignal.timeout(Math.max(1000, deadline - Date.now())) })
        found = info.multiaddrs.map(String)
        if (current.some(a => found.some(f => a.startsWith(f)))) return found
      } catch {}
      await sleep(250)
    }
    return found
  }

  async function runOnce (port: number): Promise<{ peerId: string, multiaddrs: string[] }> {
    const node = startCli(['--home', home, 'node', 'start', '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--bootstrap', boot.multiaddrs[0], '--no-relay-client'])
    try {
      const started = await node.waitForLog('node started')
      assert.equal(started.bootstrapReached, 1, 'the node reached the bootstrap node')
      // The observer, which only knows the bootstrap node, finds the node through the DHT at its current address.
      // Retried for a while: the bootstrap node may have identified the node before its DHT protocol was
      // registered (native TLS handshakes are fast enough to win that race), and learns it from the node's
      // identify push about a second later; on a loaded machine the DHT's contact ping adds seconds more.
      const found = await findWithin(peerIdFromString(started.peerId), started.multiaddrs, 60_000)
      assert.ok(started.multiaddrs.some((a: string) => found.some(f => a.startsWith(f))), `found at its current address (${found.join(', ')} vs ${started.multiaddrs.join(', ')})`)
      node.child.kill('SIGTERM')
      assert.equal(await node.exited, 0, 'SIGTERM shuts the node down cleanly')
      await node.waitForLog('stopped cleanly', 1000)
      return { peerId: started.peerId, multiaddrs: started.multiaddrs }
    } finally {
      if (node.child.exitCode == null) node.child.kill('SIGKILL')
    }
  }

  it('keeps the same PeerId across a restart and is found again through the DHT', async () => {
    const init = await runCli(['--home', home, 'init'])
    assert.equal(init.code, 0, init.stderr)
    assert.equal((await stat(join(home, 'identity.key'))).mode & 0o777, 0o600, 'identity key is private to its owner')
    assert.ok(!init.stdout.includes('identity.key') || !/[A-Za-z0-9+/]{60,}/.test(init.stdout), 'the key itself is never printed')
    const port = await freePort()
    const first = await runOnce(port)
    assert.equal(observer.libp2p.getConnections(peerIdFromString(first.peerId)).length, 0, 'the node left the network')
    const second = await runOnce(port)
    assert.equal(second.peerId, first.peerId)
    assert.ok(init.stdout.includes(first.peerId), 'init printed the peer id the node runs with')
  })
})
