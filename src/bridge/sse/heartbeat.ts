import type { SseWriter } from "./writer.js";

/** One keep-alive timer shared by every SSE response of a bridge. */
export interface SseHeartbeat {
  add(writer: SseWriter): void;
  delete(writer: SseWriter): void;
  /** Stops the timer for good. */
  stop(): void;
}

/**
 * Ticks per keep-alive interval. A response can only be judged at a tick, so
 * with one tick per interval a write just after a tick left its stream silent
 * for up to two intervals (and a proxy timing out at twice the interval cut
 * it). With N ticks the first comment comes between (N-1)/N and 1 interval
 * after the last write, for N timer wake-ups per interval in all.
 */
export const ticksPerInterval = 4;

/**
 * Ticks `ticksPerInterval` times every `intervalMs` over all open SSE
 * responses: one timer whatever the number of connections (DESIGN.md
 * "Performance": keep idle connections lean), running only while there is at
 * least one. A response that wrote nothing for an interval's worth of ticks
 * gets a comment; one whose client has read nothing for two intervals' worth
 * is reported through `onStalled`.
 */
export function createSseHeartbeat(intervalMs: number, onStalled: (writer: SseWriter) => void): SseHeartbeat {
  const writers = new Set<SseWriter>();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const tick = () => {
    for (const writer of writers) {
      if (writer.tick(ticksPerInterval) === "stalled") onStalled(writer);
    }
  };

  return {
    add(writer) {
      if (stopped) return;
      writers.add(writer);
      // Unref'd: open SSE streams alone do not keep the process alive past shutdown.
      timer ??= setInterval(tick, intervalMs / ticksPerInterval).unref();
    },
    delete(writer) {
      writers.delete(writer);
      if (writers.size === 0 && timer) {
        clearInterval(timer);
        timer = undefined;
      }
    },
    stop() {
      stopped = true;
      writers.clear();
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
