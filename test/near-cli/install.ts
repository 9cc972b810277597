/**
 * near-cli for the opt-in interop test (`npm run test:near-cli`). It is not a devDependency: near-cli 4.0.13
 * depends (not optionally) on `@ledgerhq/hw-transport-node-hid`, whose `node-hid` install script downloads a
 * prebuilt binary from GitHub or else compiles against libusb headers; on a machine that reaches only the npm
 * registry both fail and so would `npm install`. Installed here with `--ignore-scripts` (the Ledger module is
 * loaded only by `--signWithLedger`) into a folder outside the repository, reused across runs.
 *
 *   NEAR_CLI_DIR=<folder>   where to install it (default: <tmpdir>/nearai-near-cli-<version>)
 *   NEAR_CLI_BIN=<path>     use this `near` binary instead of installing
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const NEAR_CLI_VERSION = '4.0.13'

export function ensureNearCli (): string {
  if (process.env.NEAR_CLI_BIN != null && process.env.NEAR_CLI_BIN !== '') return process.env.NEAR_CLI_BIN
  const dir = process.env.NEAR_CLI_DIR ?? join(tmpdir(), `nearai-near-cli-${NEAR_CLI_VERSION}`)
  const bin = join(dir, 'node_modules', '.bin', 'near')
  if (existsSync(bin)) return bin
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'nearai-near-cli', private: true }))
  execFileSync('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--no-save', `near-cli@${NEAR_CLI_VERSION}`], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] })
  if (!existsSync(bin)) throw new Error(`npm installed near-cli@${NEAR_CLI_VERSION} into ${dir} but ${bin} is missing`)
  return bin
}
