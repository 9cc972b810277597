/**
 * Failpoints: places in the production code where a test can make the process die on purpose, at a moment no
 * signal from outside can hit reliably (a peer killed "mid-round" from the test process loses the race when its
 * all-reduce is faster than the kill). Nothing is armed unless the test sets the variable; the code around a
 * failpoint is the code that runs in production.
 *
 *   NEARAI_CRASH_BEFORE_RESULT=<round>:<members>   die (SIGKILL) in a round ≥ <round> whose group has ≥ <members>
 *                                                  members, once every contribution to this peer's own part is
 *                                                  in and before it reduces it: every member counted it in the
 *                                                  group (they sent it their contributions) and nobody has its
 *                                                  part's result, so a stand-in must reduce that part
 *
 * Before dying the process writes one JSON line to stderr synchronously
 * (`{"event":"failpoint","name":...,"round":...}`), so the test knows where it died.
 */
import { writeSync } from 'node:fs'

const CRASH_BEFORE_RESULT = 'NEARAI_CRASH_BEFORE_RESULT'

interface Armed { round: number, members: number }

function armed (env: NodeJS.ProcessEnv = process.env): Armed | undefined {
  const v = env[CRASH_BEFORE_RESULT]
  if (v == null || v === '') return undefined
  const m = /^(\d+):(\d+)$/.exec(v)
  if (m == null) throw new Error(`${CRASH_BEFORE_RESULT} must be <round>:<members>, got ${JSON.stringify(v)}`)
  return { round: Number(m[1]), members: Number(m[2]) }
}

/** Dies here when the test armed this failpoint for a round and group like this one. */
export function crashBeforeResult (round: number, members: number): void {
  const a = armed()
  if (a == null || round < a.round || members < a.members) return
  writeSync(2, JSON.stringify({ event: 'failpoint', name: 'crash-before-result', round, members, pid: process.pid }) + '\n')
  process.kill(process.pid, 'SIGKILL')
}
