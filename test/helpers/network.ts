/** Builds real libp2p nodes on 127.0.0.1 for multi-node tests. */
import { pino } from 'pino'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { PeerNode, type NodeRole, type PeerNodeOptions } from '../../node/network/peer-node.ts'
import { silentLogger } from '../../node/log/logger.ts'

export const LOOPBACK = '/ip4/127.0.0.1/tcp/0'

export async function startTestNode (role: NodeRole, overrides: Partial<PeerNodeOptions> = {}): Promise<PeerNode> {
  return await PeerNode.start({
    privateKey: overrides.privateKey ?? await generateKeyPair('Ed25519'),
    role,
    logger: process.env.NEARAI_TEST_LOG != null ? pino({ level: process.env.NEARAI_TEST_LOG }) : silentLogger(),
    listen: [LOOPBACK],
    dhtServer: true,
    relayClient: false,
    relayServer: role === 'bootstrap' ? { maxReservations: 64 } : undefined,
    maxConnections: 200,
    inboundConnectionsPerSecond: 1000,
    ipColocationThreshold: 1000,
    ...overrides
  })
}

export async function waitFor (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}
