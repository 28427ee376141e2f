/**
 * The lifecycle every long-running Herald part offers (the worker today).
 *
 * @module
 */

/** Options of `shutdown()`. */
export interface ShutdownOptions {
  /** How long in-flight sends may take before they are aborted; default the worker's `shutdownTimeoutMs`. */
  readonly timeoutMs?: number;
}

/** The lifecycle every long-running Herald part offers. */
export interface Lifecycle {
  /** Runs until `signal` aborts or `shutdown()` is called; never rejects for a failed tick. */
  run(signal?: AbortSignal): Promise<void>;
  /** Stops claiming, lets in-flight work finish up to a deadline, then aborts it. */
  shutdown(options?: ShutdownOptions): Promise<void>;
}
