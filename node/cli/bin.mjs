#!/usr/bin/env node
// Entry point of the `nearai` program: loads the TypeScript sources through tsx, so no build step is needed.
//
// The stack (Helia 7, libp2p 3, near-api-js 7) needs Node.js 22.12 or newer: on Node 20 it crashes at import
// (undici's createZstdDecompress). `npm link` or a global install puts this file behind whatever `node` is on
// PATH, often an older system one, so an older Node re-executes this file with the Node.js 22 the package
// brings along (the `node` npm dependency), passing arguments, standard streams, signals and the exit code
// through. Plain JavaScript with no imports above the check, so that it runs on any Node that can start it.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const MINIMUM = [22, 12]

function recentEnough (version) {
  const [major, minor] = version.split('.').map(Number)
  return major > MINIMUM[0] || (major === MINIMUM[0] && minor >= MINIMUM[1])
}

/** The Node.js binary of the `node` npm package installed with this one (resolved from the package, not the cwd). */
function bundledNode () {
  const self = fileURLToPath(import.meta.url)
  const candidates = []
  try {
    const pkg = createRequire(self).resolve('node/package.json')
    candidates.push(join(dirname(pkg), 'bin', process.platform === 'win32' ? 'node.exe' : 'node'))
  } catch {}
  candidates.push(join(dirname(self), '..', '..', 'node_modules', '.bin', 'node'))
  return candidates.find(path => existsSync(path))
}

function reexec (binary) {
  const child = spawn(binary, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, NEARAI_REEXEC: process.version }
  })
  // The terminal sends Ctrl-C to the whole process group; a `kill <pid>` reaches only us: pass it on.
  const forward = (signal) => { if (child.exitCode == null && child.signalCode == null) child.kill(signal) }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, forward)
  child.on('error', (err) => {
    process.stderr.write(`nearai: cannot start ${binary}: ${err.message}\n`)
    process.exit(1)
  })
  child.on('exit', (code, signal) => {
    if (signal != null) {
      // End the same way the child did, so that our parent sees the signal too.
      for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.off(s, forward)
      process.kill(process.pid, signal)
      return
    }
    process.exit(code ?? 1)
  })
}

if (!recentEnough(process.versions.node)) {
  const binary = process.env.NEARAI_REEXEC == null ? bundledNode() : undefined
  if (binary == null) {
    process.stderr.write(`nearai: needs Node.js ${MINIMUM.join('.')} or newer, this is ${process.version}; ` +
      'run `npm install` in the nearai folder (it brings Node.js 22 along) or install Node.js 22 LTS\n')
    process.exit(1)
  }
  reexec(binary)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import('./main.ts')
}
