/**
 * Failpoints: places in the production code where a test can make the process die on purpose, at a moment no
 * signal from outside can hit reliably (a peer killed "mid-round" from the test process loses the race when its
 * all-reduce is faster than the kill). Nothing is armed unless the test sets the variable; the code around a
 * failpoint is the code that runs in production.
 *
 *   NEARAI_CRASH_AFTER_GROUP=<round>:<members>   die (SIGKILL) right after the all-reduce group of a round
 *                                                ≥ <round> with ≥ <members> members formed, before sending
 *                                                anything: its part must be reduced by a stand-in
 *
 * Before dying the process writes one JSON line to stderr synchronously
 * (`{"event":"failpoint","name":...,"round":...}`), so the test knows where it died.
 */
import { writeSync } from 'node:fs'

const CRASH_AFTER_GROUP = 'NEARAI_CRASH_AFTER_GROUP'

interface Armed { round: number, members: number }

function armed (env: NodeJS.ProcessEnv = process.env): Armed | undefined {
  const v = env[CRASH_AFTER_GROUP]
  if (v == null || v === '') return undefined
  const m = /^(\d+):(\d+)$/.exec(v)
  if (m == null) throw new Error(`${CRASH_AFTER_GROUP} must be <round>:<members>, got ${JSON.stringify(v)}`)
  return { round: Number(m[1]), members: Number(m[2]) }
}

/** Dies here when the test armed this failpoint for a group like this one. */
export function crashAfterGroup (round: number, members: number): void {
  const a = armed()
  if (a == null || round < a.round || members < a.members) return
  writeSync(2, JSON.stringify({ event: 'failpoint', name: 'crash-after-group', round, members, pid: process.pid }) + '\n')
  process.kill(process.pid, 'SIGKILL')
}
