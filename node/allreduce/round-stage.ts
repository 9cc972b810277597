/**
 * Where one peer's all-reduce of a round stands, as a small explicit state machine (after Hivemind's
 * AveragingStage): every log line and every error of a round names its stage.
 *
 *   collecting ──▶ reducing ──▶ awaiting-results ──▶ auditing ──▶ done ──▶ closed
 *        └────────────┴───────────────┴─────────────────┴──▶ failed
 *
 * - collecting: this peer's own part is collecting contributions, and its own contributions are going out;
 * - reducing: every contribution to its own part is in (or given up on): the combine rule runs;
 * - awaiting-results: its own part is reduced (and served); the other parts' results are awaited;
 * - auditing: every result is in; the audit verdicts on them are awaited (audit.ts);
 * - done: the round returned its result; the session still answers late requests for a while;
 * - closed: the session is over: requests are refused, waiting streams are answered 'unavailable';
 * - failed: the round was aborted or failed; the session is over as well.
 */

export enum RoundStage {
  Collecting = 'collecting',
  Reducing = 'reducing',
  AwaitingResults = 'awaiting-results',
  Auditing = 'auditing',
  Done = 'done',
  Closed = 'closed',
  Failed = 'failed'
}

const FORWARD: readonly RoundStage[] = [RoundStage.Collecting, RoundStage.Reducing, RoundStage.AwaitingResults, RoundStage.Auditing, RoundStage.Done, RoundStage.Closed]

export class RoundStageMachine {
  private current = RoundStage.Collecting

  /** `onChange` sees every transition (for debug logs). */
  constructor (private readonly onChange?: (from: RoundStage, to: RoundStage) => void) {}

  get stage (): RoundStage { return this.current }

  /** The round still runs here: its result is not out yet. */
  get running (): boolean {
    return this.current === RoundStage.Collecting || this.current === RoundStage.Reducing || this.current === RoundStage.AwaitingResults || this.current === RoundStage.Auditing
  }

  /** The session serves nothing any more. */
  get over (): boolean {
    return this.current === RoundStage.Closed || this.current === RoundStage.Failed
  }

  /**
   * Moves forward to `to` (a stage already passed is ignored: parts complete in any order); `failed` can be
   * reached from any stage but `done` and `closed`, and nothing leaves `closed` or `failed`.
   */
  advance (to: RoundStage): void {
    if (this.over || to === this.current) return
    if (to === RoundStage.Failed) {
      if (this.current === RoundStage.Done) return
    } else if (FORWARD.indexOf(to) < FORWARD.indexOf(this.current)) {
      return
    }
    const from = this.current
    this.current = to
    this.onChange?.(from, to)
  }
}

/** An all-reduce round that failed at this peer; `stage` says how far it got, `cause` why it stopped. */
export class AllReduceRoundError extends Error {
  override name = 'AllReduceRoundError'
  constructor (readonly round: string, readonly stage: RoundStage, cause: unknown) {
    super(`all-reduce ${round} failed while ${stage}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  }
}
