/**
 * Linux network namespaces for the netns fault test, the one test that leaves 127.0.0.1 (issue 11, §5):
 * every address it uses is on a veth link it creates, in 10.211.0.0/16, inside namespaces it creates and
 * always deletes (`destroy`, also run on exit and on SIGINT/SIGTERM).
 *
 * Topology: a middle namespace ("router") with one veth link to each peer's namespace (10.211.<i+1>.0/30:
 * router .1, peer .2, the peer's default route through .1) and one to the root namespace, where the test's
 * bootstrap node runs (10.211.254.0/30: root .1, router .2). The router holds 10.211.0.1 on its loopback:
 * the forwarding proxy listens there, one port per node, and every node announces its proxy address, so all
 * traffic between nodes crosses the proxy. The router does not route packets (no ip_forward): a node is
 * reachable only through the proxy.
 */
import { execFileSync } from 'node:child_process'

export const PROXY_ADDRESS = '10.211.0.1'
export const BOOT_ADDRESS = '10.211.254.1'

export class NetnsUnavailableError extends Error {
  override name = 'NetnsUnavailableError'
}

function ip (args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** What a failed `ip`/`tc` said (its stderr), else the error's message. */
function reason (err: unknown): string {
  const stderr = (err as { stderr?: unknown }).stderr
  const text = stderr != null && String(stderr).trim() !== '' ? String(stderr) : (err as Error).message
  return text.trim()
}

function tc (ns: string, args: string[]): void {
  execFileSync('ip', ['netns', 'exec', ns, 'tc', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
}

export interface NetnsLabOptions {
  peers: number
  /** Bandwidth cap on each link into a peer (tbf), e.g. '20mbit'. */
  rate: string
}

export class NetnsLab {
  readonly router: string
  readonly peerNs: string[]
  /** The router's end of each peer's link (what a partition takes down). */
  readonly routerLinks: string[]
  readonly bootLink: string
  /** Whether the kernel has netem (then latency and loss are in the qdiscs; otherwise in the proxy). */
  netem = false
  private readonly created: string[] = []
  private readonly onExit = (): void => { this.destroy() }
  private readonly onSignal = (signal: NodeJS.Signals): void => { this.destroy(); process.kill(process.pid, signal) }

  private constructor (readonly tag: string, readonly opts: NetnsLabOptions) {
    this.router = `nearai-${tag}-r`
    this.peerNs = Array.from({ length: opts.peers }, (_, i) => `nearai-${tag}-p${i}`)
    this.routerLinks = Array.from({ length: opts.peers }, (_, i) => `${tag}r${i}`)
    this.bootLink = `${tag}b0`
  }

  /** Creates the namespaces and links; NetnsUnavailableError says why it cannot (not root, no `ip`, ...). */
  static create (opts: NetnsLabOptions): NetnsLab {
    if (opts.peers < 1 || opts.peers > 200) throw new RangeError('1-200 peers')
    try {
      ip(['-V'])
    } catch (err) {
      throw new NetnsUnavailableError(`no \`ip\` command (install iproute2): ${reason(err)}`)
    }
    try {
      const used = ip(['-4', 'addr', 'show'])
      if (used.includes(' 10.211.')) throw new NetnsUnavailableError('10.211.0.0/16 is already in use on this machine')
    } catch (err) {
      if (err instanceof NetnsUnavailableError) throw err
    }
    const lab = new NetnsLab(`f${process.pid % 100000}`, opts)
    try {
      ip(['netns', 'add', lab.router])
      lab.created.push(lab.router)
    } catch (err) {
      throw new NetnsUnavailableError(`cannot create a network namespace (root and iproute2 needed): ${reason(err)}`)
    }
    process.once('exit', lab.onExit)
    process.once('SIGINT', lab.onSignal)
    process.once('SIGTERM', lab.onSignal)
    try {
      lab.build()
    } catch (err) {
      lab.destroy()
      throw new NetnsUnavailableError(`cannot build the namespaces' links: ${reason(err)}`)
    }
    return lab
  }

  private build (): void {
    const r = this.router
    ip(['-n', r, 'link', 'set', 'lo', 'up'])
    ip(['-n', r, 'addr', 'add', `${PROXY_ADDRESS}/32`, 'dev', 'lo'])
    // The bootstrap node's link, from the root namespace.
    ip(['link', 'add', this.bootLink, 'type', 'veth', 'peer', 'name', `${this.tag}b1`])
    ip(['link', 'set', `${this.tag}b1`, 'netns', r])
    ip(['addr', 'add', `${BOOT_ADDRESS}/30`, 'dev', this.bootLink])
    ip(['link', 'set', this.bootLink, 'up'])
    ip(['-n', r, 'addr', 'add', '10.211.254.2/30', 'dev', `${this.tag}b1`])
    ip(['-n', r, 'link', 'set', `${this.tag}b1`, 'up'])
    ip(['route', 'add', `${PROXY_ADDRESS}/32`, 'via', '10.211.254.2', 'dev', this.bootLink])
    this.netem = this.probeNetem()
    for (let i = 0; i < this.opts.peers; i++) {
      const ns = this.peerNs[i]
      const inner = `${this.tag}p${i}`
      ip(['netns', 'add', ns])
      this.created.push(ns)
      ip(['-n', ns, 'link', 'set', 'lo', 'up'])
      ip(['-n', r, 'link', 'add', this.routerLinks[i], 'type', 'veth', 'peer', 'name', inner])
      ip(['-n', r, 'link', 'set', inner, 'netns', ns])
      ip(['-n', r, 'addr', 'add', `10.211.${i + 1}.1/30`, 'dev', this.routerLinks[i]])
      ip(['-n', ns, 'addr', 'add', `10.211.${i + 1}.2/30`, 'dev', inner])
      ip(['-n', r, 'link', 'set', this.routerLinks[i], 'up'])
      ip(['-n', ns, 'link', 'set', inner, 'up'])
      ip(['-n', ns, 'route', 'add', 'default', 'via', `10.211.${i + 1}.1`])
      // Into the peer: the bandwidth cap, behind netem's half of the path's latency and loss where it exists
      // (the other half on the peer's own egress), so A to B crosses 2 x 25 ms and 2 x 1%.
      const tbf = ['rate', this.opts.rate, 'burst', '64kb', 'latency', '400ms']
      if (this.netem) {
        tc(r, ['qdisc', 'add', 'dev', this.routerLinks[i], 'root', 'handle', '1:', 'netem', 'delay', '25ms', 'loss', '1%'])
        tc(r, ['qdisc', 'add', 'dev', this.routerLinks[i], 'parent', '1:1', 'handle', '10:', 'tbf', ...tbf])
        tc(ns, ['qdisc', 'add', 'dev', inner, 'root', 'netem', 'delay', '25ms', 'loss', '1%'])
      } else {
        tc(r, ['qdisc', 'add', 'dev', this.routerLinks[i], 'root', 'tbf', ...tbf])
      }
    }
  }

  /** netem exists when a netem qdisc can be put on (and taken off) a link. */
  private probeNetem (): boolean {
    try {
      tc(this.router, ['qdisc', 'add', 'dev', `${this.tag}b1`, 'root', 'netem', 'delay', '1ms'])
      tc(this.router, ['qdisc', 'del', 'dev', `${this.tag}b1`, 'root'])
      return true
    } catch {
      return false
    }
  }

  /** The peer's address on its own link (what it listens on). */
  peerAddress (i: number): string { return `10.211.${i + 1}.2` }

  /** `ip netns exec <peer's namespace>`: the command prefix that runs a process inside it. */
  execPrefix (i: number): string[] { return ['ip', 'netns', 'exec', this.peerNs[i]] }
  routerPrefix (): string[] { return ['ip', 'netns', 'exec', this.router] }

  /** Cuts (or restores) peer i's link: packets to and from it are dropped; connections stall, none is closed. */
  setLink (i: number, up: boolean): void {
    ip(['-n', this.router, 'link', 'set', this.routerLinks[i], up ? 'up' : 'down'])
  }

  /** Deletes every namespace this lab created (their links go with them). Idempotent, synchronous. */
  destroy (): void {
    for (const ns of this.created.splice(0).reverse()) {
      try { ip(['netns', 'del', ns]) } catch { /* already gone */ }
    }
    try { ip(['link', 'del', this.bootLink]) } catch { /* went with the router's end */ }
    process.removeListener('exit', this.onExit)
    process.removeListener('SIGINT', this.onSignal)
    process.removeListener('SIGTERM', this.onSignal)
  }
}
