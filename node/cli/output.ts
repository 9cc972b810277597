/**
 * What a one-shot command prints on stdout: its result, once. With `--json` the result is one JSON
 * document (CIDs as strings) and nothing else reaches stdout; otherwise the human-readable text. Logs,
 * progress and errors always go to stderr, so `nearai dataset ls --json | jq` sees only the document.
 * On failure nothing is printed on stdout: the exit code is non-zero and stderr says why, in one line.
 */
import { Option, type Command } from 'commander'
import { CID } from 'multiformats/cid'

export interface Output {
  /** True when the command was given `--json`. */
  readonly json: boolean
  /** Prints the command's result: `doc` as JSON with --json, else `human` (text, or lines joined with '\n'). */
  result: (doc: unknown, human: string | string[] | (() => string | string[])) => void
}

/** Adds `--json` to a one-shot command. */
export function withJsonFlag (cmd: Command): Command {
  return cmd.addOption(new Option('--json', 'print the result as one JSON document on stdout (logs stay on stderr)'))
}

/** JSON with CIDs as their string form (not dag-json's `{ "/": ... }`) and bigints as decimal strings. */
export function toJson (doc: unknown): string {
  return JSON.stringify(plain(doc), null, 2)
}

function plain (value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  if (value == null || typeof value !== 'object') return value
  const cid = CID.asCID(value)
  if (cid != null) return cid.toString()
  if (Array.isArray(value)) return value.map(plain)
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), plain(v)]))
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return plain((value as { toJSON: () => unknown }).toJSON())
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, plain(v)]))
}

export function outputFor (opts: { json?: boolean }, write: (text: string) => void = text => { process.stdout.write(text) }): Output {
  let printed = false
  const json = opts.json === true
  return {
    json,
    result: (doc, human) => {
      if (printed) throw new Error('a command prints one result')
      printed = true
      if (json) {
        write(toJson(doc) + '\n')
        return
      }
      const text = typeof human === 'function' ? human() : human
      const lines = Array.isArray(text) ? text : [text]
      const body = lines.join('\n')
      if (body.length > 0) write(body.endsWith('\n') ? body : body + '\n')
    }
  }
}
