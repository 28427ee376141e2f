/**
 * What Herald needs of an application's OpenTelemetry objects, as plain
 * shapes: any `Tracer` or `Meter` of `@opentelemetry/api` fits them. Herald's
 * public options name these, so its API does not tie you to the API
 * package's type declarations.
 *
 * @module
 */

/** An OpenTelemetry `Tracer` (`trace.getTracer(...)`), as Herald uses it. */
export interface TracerLike {
  /** Starts a span. */
  startSpan(name: string, options?: object, context?: object): object;
}

/** An OpenTelemetry `Meter` (`metrics.getMeter(...)`), as Herald uses it. */
export interface MeterLike {
  /** Creates a counter. */
  createCounter(name: string, options?: object): object;
  /** Creates a histogram. */
  createHistogram(name: string, options?: object): object;
}
