/** Whether the server can serve now, asked on demand and watched for changes. */
export interface ReadinessWatch {
  /** Asks now; a failing check counts as not ready. */
  check(): Promise<boolean>;
  /**
   * Readiness as it changes: a fresh answer first, then every change.
   * Conflated: a reader slower than the changes gets the latest, never a
   * backlog, and never the same value twice in a row. Ends when `signal` aborts.
   */
  watch(signal: AbortSignal): AsyncIterable<boolean>;
}

/**
 * Polls `check` every `intervalMs`, once for all watchers and only while
 * someone watches. Polling rather than broker events: it asks exactly what
 * GET /readyz asks (Broker.ready(), a PING on Redis), so a gRPC health probe
 * and an HTTP one never disagree, and it works for every broker alike.
 */
export function createReadinessWatch(check: () => Promise<boolean>, intervalMs: number): ReadinessWatch {
  const safeCheck = () => check().catch(() => false);
  const watchers = new Set<() => void>();
  /** Polls started so far, and the latest result with the number of the poll that produced it. */
  let started = 0;
  let latest: { poll: number; ready: boolean } | undefined;
  let polling = false;
  /** Cuts the pause between polls short (a new watcher wants a fresh answer). */
  let kick: (() => void) | undefined;
  let kicked = false;

  async function poll(): Promise<void> {
    polling = true;
    try {
      while (watchers.size > 0) {
        kicked = false;
        const poll = ++started;
        const ready = await safeCheck();
        latest = { poll, ready };
        for (const wake of watchers) wake();
        if (kicked || watchers.size === 0) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, intervalMs);
          kick = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        kick = undefined;
      }
    } finally {
      polling = false;
    }
  }

  return {
    check: safeCheck,
    async *watch(signal) {
      // Only a poll started after this watcher joined answers it first: an
      // older result may predate the change the watcher came to see.
      const joinedAfter = started;
      let sent: boolean | undefined;
      let wake: () => void = () => undefined;
      const woken = () => wake();
      watchers.add(woken);
      signal.addEventListener("abort", woken);
      kicked = true;
      if (polling) kick?.();
      else void poll();
      try {
        while (!signal.aborted) {
          const current = latest !== undefined && latest.poll > joinedAfter ? latest.ready : undefined;
          if (current !== undefined && current !== sent) {
            sent = current;
            yield current;
            continue;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      } finally {
        watchers.delete(woken);
        signal.removeEventListener("abort", woken);
      }
    },
  };
}
