/**
 * What a bootstrap node's circuit relay v2 server lets peers behind NAT use. libp2p's own defaults (a relayed
 * connection closes after 128 KiB or 2 minutes) are meant for coordinating a hole punch only and would cut a
 * model update in the middle; a NearAI relay carries training when no direct connection can be made, so its
 * defaults let a small job run through it while every relayed connection stays bounded.
 */
import type { CircuitRelayServerInit } from '@libp2p/circuit-relay-v2'

export interface RelayServerLimits {
  /** Peers that may hold a reservation (be reachable through this node) at once. */
  maxReservations: number
  /** How long a reservation lasts; relay clients renew theirs before it expires. */
  reservationTtlSeconds: number
  /** How long one relayed connection may stay open before the relay closes it (the peers then dial again). */
  durationLimitSeconds: number
  /** Bytes one relayed connection may carry, both directions together, before the relay closes it. */
  dataLimitBytes: number
  /** Relayed connections one peer may open through this node, and may receive through it, at once. */
  maxCircuitsPerPeer: number
}

/**
 * A round of the demo's MNIST MLP (fp16) moves about 0.63 MB, both directions, over each relayed connection of a
 * 3-peer group (benchmarks/relay-cost.ts): one relayed connection carries about a hundred rounds, fewer with
 * shards, before the relay recycles it (the next stream dials a new one). The data limit is also what one relayed
 * connection can make the relay hold in memory: js-libp2p's relay does not slow a sender down to its receiver's
 * pace. 16 circuits per peer is go-libp2p's default.
 */
export const DEFAULT_RELAY_LIMITS: Readonly<RelayServerLimits> = Object.freeze({
  maxReservations: 128,
  reservationTtlSeconds: 3600,
  durationLimitSeconds: 3600,
  dataLimitBytes: 64 * 1024 * 1024,
  maxCircuitsPerPeer: 16
})

/** The circuit relay server's init for `limits` (missing fields take DEFAULT_RELAY_LIMITS). */
export function relayServerInit (limits: Partial<RelayServerLimits> = {}): CircuitRelayServerInit {
  const l = { ...DEFAULT_RELAY_LIMITS, ...limits }
  return {
    reservations: {
      maxReservations: l.maxReservations,
      reservationTtl: l.reservationTtlSeconds * 1000,
      applyDefaultLimit: true,
      // The server times the duration in milliseconds (it sends the same number to the client, which reads it as
      // seconds: js-libp2p 3.3's clients see a relayed connection's `limits.seconds` 1000 times too long).
      defaultDurationLimit: l.durationLimitSeconds * 1000,
      defaultDataLimit: BigInt(l.dataLimitBytes)
    },
    // A dialler's circuits through this node each hold one inbound HOP stream; a reserved peer's each hold one
    // outbound STOP stream.
    maxInboundHopStreams: l.maxCircuitsPerPeer,
    maxOutboundStopStreams: l.maxCircuitsPerPeer
  }
}
