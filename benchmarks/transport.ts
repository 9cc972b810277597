/**
 * One bulk copy over one stream, 127.0.0.1: a raw node:net socket (the baseline, same run, same processes)
 * against libp2p TCP connections with each encrypter and Yamux setting, and against the production stack as
 * buildLibp2pOptions builds it now.
 *
 *   node --import tsx benchmarks/transport.ts                      # 64 MB, 5 repetitions, every variant
 *   node --import tsx benchmarks/transport.ts --mb 16 --reps 3 --variants raw-tcp,noise,native-tls
 *   (or NEARAI_BENCH_MB, NEARAI_BENCH_REPS, NEARAI_BENCH_VARIANTS)
 *
 * Two processes, as two peers of the real network are: this one sends, a forked child receives. Each has one
 * node per variant, connected before timing starts; repetitions go round the variants in turn, so load that
 * comes and goes on the machine falls on all of them alike. A copy is timed from opening the stream to the
 * receiver's one-byte answer after the last byte; the sender writes 1 MiB chunks and waits for drain when the
 * stream asks. The table gives the median MB/s of each variant, its ratio to the raw socket's median, the median
 * of the per-repetition ratios (each copy against the raw copy just before it: steadier on a loaded machine), and
 * the ratio of the fastest copies (the runs least disturbed by other work on the machine), and the CPU time both
 * processes spent on one copy (process.cpuUsage, user + system), which load moves far less.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { connect, type Server, type AddressInfo } from 'node:net'
import { rawTcpSink } from './raw-tcp-sink.ts'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tls } from '@libp2p/tls'
import { multiaddr } from '@multiformats/multiaddr'
import { nativeTls } from '../node/network/native-tls.ts'
import { buildLibp2pOptions } from '../node/network/libp2p-options.ts'

const MB = 1024 * 1024
const CHUNK = MB
const COPY_PROTOCOL = '/nearai/bench/transport-copy/1.0.0'

interface Variant { name: string, what: string, options?: () => Promise<Record<string, unknown>> }

/**
 * The Yamux change tried: a 4 MiB initial stream window (default 256 KiB; the window grows to 16 MiB only when
 * the receiver keeps up within 4 RTTs, which a loopback RTT of ~0 ms rarely allows). Interop caveat: js-yamux
 * assumes the remote's initial window is its own, so this only works when both peers set it.
 * NEARAI_BENCH_YAMUX (JSON yamux options) replaces it, to try other settings.
 */
const TUNING = process.env.NEARAI_BENCH_YAMUX != null
  ? JSON.parse(process.env.NEARAI_BENCH_YAMUX)
  : { streamOptions: { initialStreamWindowSize: 4 * MB, maxStreamWindowSize: 16 * MB } }
const tuned = (): ReturnType<typeof yamux> => yamux(TUNING)
const plain = (encrypter: () => unknown, muxer: () => unknown) => async () => ({
  transports: [tcp()], connectionEncrypters: [encrypter()], streamMuxers: [muxer()], services: {}
})

const VARIANTS: Variant[] = [
  { name: 'raw-tcp', what: 'node:net socket, no libp2p (baseline)' },
  { name: 'noise', what: 'Noise + Yamux defaults (production before)', options: plain(noise, yamux) },
  { name: 'noise-tuned', what: 'Noise + Yamux with a 4 MiB initial stream window', options: plain(noise, tuned) },
  { name: 'libp2p-tls', what: '@libp2p/tls (node:tls over a JS duplex) + Yamux defaults', options: plain(tls, yamux) },
  { name: 'native-tls', what: 'native TLS + Yamux defaults', options: plain(nativeTls, yamux) },
  { name: 'native-tls-aes256', what: 'native TLS, AES-256-GCM only (node:tls default order) + Yamux defaults', options: plain(() => nativeTls({ cipherSuites: 'TLS_AES_256_GCM_SHA384' }), yamux) },
  { name: 'native-tls-tuned', what: 'native TLS + Yamux with a 4 MiB initial stream window', options: plain(nativeTls, tuned) },
  {
    name: 'production',
    what: 'buildLibp2pOptions now (native TLS offered first, Noise fallback, Yamux defaults, all services)',
    options: async () => {
      const o = buildLibp2pOptions({ privateKey: await generateKeyPair('Ed25519'), listen: [], dhtServer: false, relayClient: false, maxConnections: 100 })
      return { ...o, transports: [tcp()], peerDiscovery: [], addresses: undefined }
    }
  }
]

function warn (...parts: unknown[]): void { process.stderr.write(parts.map(String).join(' ') + '\n') }

async function makeNode (v: Variant): Promise<Libp2p> {
  const opts = await v.options!()
  return await createLibp2p({
    ...opts,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    connectionManager: { inboundConnectionThreshold: 1000, maxConnections: 100 }
  } as any)
}

// ---------------- receiver (child process) ----------------

async function receiver (): Promise<void> {
  const nodes: Libp2p[] = []
  const server: Server = await rawTcpSink()
  process.on('message', (msg: { cmd: string, variants?: string[] }) => {
    void (async () => {
      if (msg.cmd === 'setup') {
        const addrs: Record<string, string> = {}
        for (const name of msg.variants ?? []) {
          const v = VARIANTS.find(x => x.name === name)!
          if (v.options == null) continue
          const node = await makeNode(v)
          await node.handle(COPY_PROTOCOL, async (stream) => {
            let expected = -1
            let got = 0
            for await (const chunk of stream) {
              // Count without copying (subarray() of a Uint8ArrayList of several buffers concatenates them).
              if (expected < 0) {
                const head = chunk.subarray(0, 8)
                expected = new DataView(head.buffer, head.byteOffset).getFloat64(0)
              }
              got += chunk.byteLength
              if (got >= expected + 8) break
            }
            stream.send(new Uint8Array([1]))
            await stream.close()
          }, { maxInboundStreams: 64 })
          nodes.push(node)
          addrs[name] = node.getMultiaddrs()[0].toString()
        }
        process.send!({ cmd: 'ready', addrs, tcpPort: (server.address() as AddressInfo).port })
      } else if (msg.cmd === 'cpu') {
        const u = process.cpuUsage()
        process.send!({ cmd: 'cpu', us: u.user + u.system })
      } else if (msg.cmd === 'stop') {
        await Promise.all(nodes.map(async n => { await n.stop() }))
        server.close()
        process.exit(0)
      }
    })().catch(err => { warn('receiver:', err?.stack ?? err); process.exit(1) })
  })
  process.send!({ cmd: 'up' })
}

// ---------------- sender (this process) ----------------

function header (bytes: number): Uint8Array {
  const h = new Uint8Array(8)
  new DataView(h.buffer).setFloat64(0, bytes)
  return h
}

async function copyRaw (port: number, bytes: number, chunk: Uint8Array): Promise<number> {
  const t0 = performance.now()
  const socket = connect(port, '127.0.0.1')
  socket.setNoDelay(true)
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const done = new Promise<void>((resolve, reject) => { socket.once('data', () => { resolve() }); socket.once('error', reject) })
  socket.write(header(bytes))
  for (let sent = 0; sent < bytes; sent += chunk.byteLength) {
    if (!socket.write(chunk)) await new Promise(resolve => socket.once('drain', resolve))
  }
  await done
  const ms = performance.now() - t0
  socket.destroy()
  return ms
}

async function copyLibp2p (node: Libp2p, addr: string, bytes: number, chunk: Uint8Array): Promise<number> {
  const t0 = performance.now()
  const stream = await node.dialProtocol(multiaddr(addr), COPY_PROTOCOL, { signal: AbortSignal.timeout(120_000) })
  const reply = (async () => { for await (const _ of stream) return })()
  stream.send(header(bytes))
  for (let sent = 0; sent < bytes; sent += chunk.byteLength) {
    if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(120_000) })
  }
  await reply
  const ms = performance.now() - t0
  await stream.close().catch(() => {})
  return ms
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: { mb: { type: 'string' }, reps: { type: 'string' }, variants: { type: 'string' } }
  })
  const mb = Number(values.mb ?? process.env.NEARAI_BENCH_MB ?? 64)
  const reps = Number(values.reps ?? process.env.NEARAI_BENCH_REPS ?? 5)
  const names = String(values.variants ?? process.env.NEARAI_BENCH_VARIANTS ?? VARIANTS.map(v => v.name).join(',')).split(',')
  for (const n of names) if (VARIANTS.find(v => v.name === n) == null) throw new Error(`unknown variant ${n}`)
  if (!names.includes('raw-tcp')) names.unshift('raw-tcp')
  const bytes = mb * MB
  const chunk = new Uint8Array(CHUNK).map((_, i) => i * 7)

  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--receiver'], { execArgv: ['--import', 'tsx'] })
  const next = async <T>(cmd: string): Promise<T> => await new Promise((resolve, reject) => {
    const on = (m: any): void => { if (m.cmd === cmd) { child.off('message', on); resolve(m) } }
    child.on('message', on)
    child.once('exit', code => { reject(new Error(`receiver exited with ${code}`)) })
  })
  await next('up')
  child.send({ cmd: 'setup', variants: names })
  const { addrs, tcpPort } = await next<{ addrs: Record<string, string>, tcpPort: number }>('ready')
  const senders: Record<string, Libp2p> = {}
  for (const name of names) {
    const v = VARIANTS.find(x => x.name === name)!
    if (v.options == null) continue
    senders[name] = await makeNode(v)
    const conn = await senders[name].dial(multiaddr(addrs[name]))
    warn(`${name}: connected, encryption ${conn.encryption ?? '?'}, muxer ${conn.multiplexer ?? '?'}`)
  }

  console.log(`yamux tuning of the *-tuned variants: ${JSON.stringify(TUNING)}`)
  console.log(`transport: one ${mb} MB copy over one stream, 127.0.0.1, sender and receiver in two processes (one peer each), ${CHUNK / MB} MiB writes, ${reps} repetitions (+1 warm-up), median`)
  const times: Record<string, number[]> = Object.fromEntries(names.map(n => [n, []]))
  const ratios: Record<string, number[]> = Object.fromEntries(names.map(n => [n, []]))
  const cpu: Record<string, number[]> = Object.fromEntries(names.map(n => [n, []]))
  const cpuUs = async (): Promise<number> => {
    const [theirs] = await Promise.all([next<{ us: number }>('cpu'), Promise.resolve(child.send({ cmd: 'cpu' }))])
    const u = process.cpuUsage()
    return theirs.us + u.user + u.system
  }
  for (let r = -1; r < reps; r++) {
    let rawMs = 0
    for (const name of names) {
      const c0 = await cpuUs()
      const ms = name === 'raw-tcp' ? await copyRaw(tcpPort, bytes, chunk) : await copyLibp2p(senders[name], addrs[name], bytes, chunk)
      const c1 = await cpuUs()
      if (name === 'raw-tcp') rawMs = ms
      if (r >= 0) { times[name].push(ms); ratios[name].push(rawMs / ms); cpu[name].push((c1 - c0) / 1000) }
      warn(`rep ${r < 0 ? 'warm-up' : r + 1} ${name}: ${(bytes / MB / (ms / 1000)).toFixed(0)} MB/s, ${(rawMs / ms).toFixed(2)}x this rep's raw copy, CPU (both processes) ${((c1 - c0) / 1000).toFixed(0)} ms`)
    }
  }
  const rate = (ms: number): number => bytes / MB / (ms / 1000)
  const base = rate(median(times['raw-tcp']))
  console.log('')
  console.log('| variant | what | MB/s (median) | min-max MB/s | ratio to raw TCP | median of per-rep ratios | best copy / best raw copy | CPU ms per copy, both processes (median) |')
  console.log('|---|---|---:|---:|---:|---:|---:|---:|')
  for (const name of names) {
    const ts = times[name]
    const v = VARIANTS.find(x => x.name === name)!
    const m = rate(median(ts))
    console.log(`| ${name} | ${v.what} | ${m.toFixed(0)} | ${rate(Math.max(...ts)).toFixed(0)}-${rate(Math.min(...ts)).toFixed(0)} | ${(m / base).toFixed(2)}x | ${median(ratios[name]).toFixed(2)}x | ${(Math.min(...times['raw-tcp']) / Math.min(...ts)).toFixed(2)}x | ${median(cpu[name]).toFixed(0)} |`)
  }
  await Promise.all(Object.values(senders).map(async n => { await n.stop() }))
  child.send({ cmd: 'stop' })
}

if (process.argv.includes('--receiver')) {
  receiver().catch(err => { warn(err?.stack ?? err); process.exit(1) })
} else {
  main().then(() => { process.exitCode = 0 }, err => { warn(err?.stack ?? err); process.exit(1) })
}
