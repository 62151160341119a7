/** How a reconnecting client spaces its attempts. */
export interface BackoffOptions {
  /** The first attempt's ceiling, in milliseconds. */
  readonly initialMs: number;
  /** No attempt waits longer than this. */
  readonly maxMs: number;
}

/** The longest wait between attempts unless a client is told otherwise: a returning server is found within half a minute. */
const defaultMaxMs = 30_000;

/** A client's backoff options, filled in: `defaultInitialMs` is that client's (its transport's) own default. */
export function backoffOptions(given: Partial<BackoffOptions> | undefined, defaultInitialMs: number): BackoffOptions {
  return { initialMs: given?.initialMs ?? defaultInitialMs, maxMs: given?.maxMs ?? defaultMaxMs };
}

/**
 * Exponential backoff with full jitter: a uniformly random delay between 0
 * and `min(maxMs, initialMs * 2^attempt)`. Full jitter spreads the clients
 * a restarted server dropped all at once, instead of bringing them back in
 * waves (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
 * `attempt` counts from 0; `random` returns a number in [0, 1).
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
