import assert from 'node:assert/strict'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../../node/config/load.ts'
import { BOOTSTRAP_LISTEN, DEFAULT_LISTEN } from '../../node/config/schema.ts'
import { removeDir } from '../helpers/temp-dir.ts'

const PEER = '12D3KooWGRYZDHBNaydhLQwxdUxRUG3Nr4dkBtPGgBg1nqxKCR6D'

describe('config: loading, defaults and validation', () => {
  let dir: string

  before(async () => { dir = await mkdtemp(join(tmpdir(), 'nearai-config-')) })
  after(async () => { await removeDir(dir) })

  it('listens on any free port by default; a command\'s own defaults (a bootstrap node\'s fixed port) sit below the file', async () => {
    assert.deepEqual((await loadConfig({ home: join(dir, 'none'), env: {} })).network.listen, ['/ip4/0.0.0.0/tcp/0'])
    assert.deepEqual(DEFAULT_LISTEN, ['/ip4/0.0.0.0/tcp/0'])
    const defaults = { network: { listen: BOOTSTRAP_LISTEN } }
    assert.deepEqual((await loadConfig({ home: join(dir, 'none'), env: {}, defaults })).network.listen, ['/ip4/0.0.0.0/tcp/4010'])
    const home = join(dir, 'with-file')
    await mkdir(home)
    await writeFile(join(home, 'config.json'), JSON.stringify({ network: { listen: ['/ip4/127.0.0.1/tcp/5000'] } }))
    assert.deepEqual((await loadConfig({ home, env: {}, defaults })).network.listen, ['/ip4/127.0.0.1/tcp/5000'], 'the file wins over the command\'s default')
    assert.deepEqual((await loadConfig({ home, env: { NEARAI_NETWORK_LISTEN: '/ip4/127.0.0.1/tcp/6000' }, defaults })).network.listen, ['/ip4/127.0.0.1/tcp/6000'])
  })

  it('accepts bootstrap multiaddrs ending in /p2p/<peer id>, relayed ones too', async () => {
    const bootstrap = [`/ip4/203.0.113.7/tcp/4010/p2p/${PEER}`, `/dns4/boot.example/tcp/4010/p2p/${PEER}/p2p-circuit/p2p/${PEER}`]
    assert.deepEqual((await loadConfig({ home: join(dir, 'none'), env: {}, flags: { network: { bootstrap } } })).network.bootstrap, bootstrap)
  })

  it('refuses a bootstrap address that is no multiaddr or lacks /p2p/, naming the flag, the variable or the file it came from', async () => {
    const flagged = loadConfig({ home: join(dir, 'none'), env: {}, flags: { network: { bootstrap: ['not/a/multiaddr'] } }, flagNames: { 'network.bootstrap': '--bootstrap' } })
    await assert.rejects(flagged, (err: Error) => err instanceof ConfigError &&
      err.message === 'invalid configuration: --bootstrap: "not/a/multiaddr" is not a multiaddr (String multiaddr must start with "/"); one looks like /ip4/203.0.113.7/tcp/4010/p2p/<peer id>')
    await assert.rejects(loadConfig({ home: join(dir, 'none'), env: { NEARAI_NETWORK_BOOTSTRAP: '/ip4/203.0.113.7/tcp/4010' } }), (err: Error) =>
      err.message === 'invalid configuration: NEARAI_NETWORK_BOOTSTRAP: "/ip4/203.0.113.7/tcp/4010" does not end in /p2p/<peer id>: a bootstrap address names the node\'s peer id (`nearai init` prints it)')
    const home = join(dir, 'bad-file')
    await mkdir(home)
    await writeFile(join(home, 'config.json'), JSON.stringify({ network: { bootstrap: [`/ip4/1.2.3.4/tcp/1/p2p/${PEER}`, '/ip4/1.2.3.4/tcp/1/p2p/12D3KooWnope'] } }))
    await assert.rejects(loadConfig({ home, env: {} }), (err: Error) =>
      err.message === `invalid configuration: ${join(home, 'config.json')} network.bootstrap.1: "/ip4/1.2.3.4/tcp/1/p2p/12D3KooWnope" ends in /p2p/12D3KooWnope, which is not a peer id`)
  })

  it('refuses listen addresses that are not multiaddrs (a port over 65535, an empty one)', async () => {
    await assert.rejects(loadConfig({ home: join(dir, 'none'), env: {}, flags: { network: { listen: ['/ip4/0.0.0.0/tcp/70000'] } }, flagNames: { 'network.listen': '--listen' } }),
      /^ConfigError: invalid configuration: --listen: "\/ip4\/0\.0\.0\.0\/tcp\/70000" is not a multiaddr/)
    await assert.rejects(loadConfig({ home: join(dir, 'none'), env: {}, flags: { network: { announce: [''] } } }),
      (err: Error) => err instanceof ConfigError && err.message === 'invalid configuration: the flag for network.announce: an empty address is not a multiaddr; one looks like /ip4/203.0.113.7/tcp/4010')
  })
})
