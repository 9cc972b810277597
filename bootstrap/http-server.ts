/**
 * The operator's HTTP endpoint: `/metrics` (Prometheus text format) and `/healthz` (200 while the node runs).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import type { PeerNode } from '../node/network/peer-node.ts'

export interface OpsServer {
  url: string
  close: () => Promise<void>
}

export async function startOpsServer (node: PeerNode, registry: Registry, host: string, port: number): Promise<OpsServer> {
  const started = Date.now()
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end()
    } else if (path === '/metrics') {
      registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': registry.contentType }).end(text)
      }, (err: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`)
      })
    } else if (path === '/healthz') {
      const ok = node.libp2p.status === 'started'
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({
        status: ok ? 'ok' : node.libp2p.status,
        peerId: node.peerId,
        peers: node.connectedPeers().length,
        uptimeSeconds: Math.round((Date.now() - started) / 1000)
      }) + '\n')
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n')
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { resolve() })
  })
  const addr = server.address() as AddressInfo
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}`,
    close: async () => { await new Promise<void>(resolve => { server.close(() => { resolve() }); server.closeAllConnections() }) }
  }
}
