/** setTimeout's largest delay (2^31-1 ms, about 24.8 days): Node fires a longer one after 1 ms. */
export const maxTimerDelayMs = 2 ** 31 - 1;

/**
 * Calls `fire` once at `deadline` (ms since the Unix epoch), synchronously if
 * it has passed already; the returned function cancels it. A deadline beyond
 * setTimeout's range is reached in steps: the timer re-arms until the time is
 * up, rather than firing after 1 ms as one long timer would. An infinite
 * deadline arms nothing.
 *
 * The timer is unref'd: it ends a stream or a call, whose connection is what
 * keeps the process alive, and must not keep a process alive by itself.
 */
export function timerAt(deadline: number, fire: () => void): () => void {
  if (deadline === Infinity) return () => undefined;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const left = deadline - Date.now();
    if (left > 0) timer = setTimeout(arm, Math.min(left, maxTimerDelayMs)).unref();
    else fire();
  };
  arm();
  return () => clearTimeout(timer);
}
