/**
 * One line of progress for long work (`run --once`, `prune`): on a
 * terminal it is rewritten in place as the count grows (count, rate, and the
 * time left when the total is known); elsewhere it stays silent and the
 * command logs periodic summaries instead.
 *
 * @module
 */
import type { Io } from "./_command.ts";
import { formatDuration } from "./_format.ts";

/** Redraws at most this often. */
const EVERY_MS = 200;

/** A progress line on `io.progress`, when there is one. */
export class Progress {
  readonly #io: Io;
  readonly #what: string;
  readonly #total: number | undefined;
  readonly #now: () => number;
  readonly #began: number;
  #drawn = -Infinity;

  /**
   * `what`: the verb after the count ("handled", "deleted"); `total`, when
   * known; `now`, the clock in milliseconds (injected by tests).
   */
  constructor(
    io: Io,
    what: string,
    total: number | undefined,
    now: () => number = () => performance.now(),
  ) {
    this.#io = io;
    this.#what = what;
    this.#total = total;
    this.#now = now;
    this.#began = now();
  }

  /** Whether a terminal shows the line (else the caller logs summaries). */
  get live(): boolean {
    return this.#io.progress !== undefined;
  }

  /** `n` done so far. */
  update(n: number): void {
    const now = this.#now();
    if (!this.#io.progress || now - this.#drawn < EVERY_MS) return;
    this.#drawn = now;
    const seconds = (now - this.#began) / 1000;
    const rate = seconds > 0 ? n / seconds : 0;
    const total = this.#total;
    const left = total !== undefined && rate > 0 && total > n
      ? `, about ${formatDuration(((total - n) / rate) * 1000)} left`
      : "";
    this.#io.progress.update(
      `herald: ${n.toLocaleString("en-US")}${
        total === undefined ? "" : ` of ${total.toLocaleString("en-US")}`
      } route(s) ${this.#what}, ${Math.round(rate).toLocaleString("en-US")}/s${left}`,
    );
  }

  /** Ends the line (a terminal's cursor goes to the next). */
  done(): void {
    if (this.#drawn > -Infinity) this.#io.progress?.end();
  }
}
