/**
 * Protocol identifiers of the NearAI network. Versioned: a breaking change gets a new id, and nodes of
 * different versions simply do not speak to each other on that protocol.
 */

/** This network's own Kademlia DHT, kept apart from the public IPFS DHT (`/ipfs/kad/1.0.0`). */
export const DHT_PROTOCOL = '/nearai/kad/1.0.0'

/** The libp2p identify protocol prefix, so peers advertise themselves as NearAI nodes. */
export const IDENTIFY_PROTOCOL_PREFIX = 'nearai'

/** Agent version string announced by identify. */
export const AGENT_NAME = 'nearai'

/** Wire version of the gossip message envelope; bumped together with the topic version. */
export const GOSSIP_VERSION = 1

/**
 * Streaming a UnixFS DAG's blocks straight from a holder (`protocol/shard-stream.ts`): the fast path of a
 * dataset fetch; bitswap remains the fallback.
 */
export const SHARD_STREAM_PROTOCOL = '/nearai/shard/1.0.0'
