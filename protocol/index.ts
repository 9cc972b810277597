/**
 * @packageDocumentation
 *
 * The NearAI wire protocol: protocol ids, gossip topics, DHT key namespaces, message schemas and the
 * parsers that reject malformed input. Pure: no sockets, no files, no clocks.
 */
export * from './errors.ts'
export * from './ids.ts'
export * from './codec.ts'
export * from './topics.ts'
export * from './dht-keys.ts'
export * from './records.ts'
export * from './gossip.ts'
export * from './dataset-format.ts'
