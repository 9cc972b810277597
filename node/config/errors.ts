/** Errors of the node's configuration and home, in a module of their own so that throwing one loads nothing else. */

/** A configuration value (file, environment, flag) that cannot be used; the message names where it came from. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** The node's home is missing, unreadable or not writable. */
export class HomeError extends Error {
  override name = 'HomeError'
}
