import { describe, expect, it } from "vitest";
import { createReadinessWatch } from "../../src/grpc/readiness-watch.js";

/** A readiness the test sets, and a way to wait until it has been asked `n` more times. */
function controlledReadiness(initial: boolean) {
  let ready = initial;
  let asked = 0;
  const waiters: { at: number; resolve: () => void }[] = [];
  return {
    set: (value: boolean) => (ready = value),
    async check(): Promise<boolean> {
      asked += 1;
      for (const waiter of waiters.filter((each) => each.at <= asked)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
      return ready;
    },
    /** Resolves once the check has run `n` more times (each after the previous answer was taken in). */
    asked: (n: number) => new Promise<void>((resolve) => waiters.push({ at: asked + n, resolve })),
  };
}

describe("createReadinessWatch", () => {
  it("answers each new watcher freshly, then sends only changes", async () => {
    const readiness = controlledReadiness(true);
    const watch = createReadinessWatch(() => readiness.check(), 1);
    const abort = new AbortController();
    const a = watch.watch(abort.signal)[Symbol.asyncIterator]();
    expect((await a.next()).value).toBe(true);
    readiness.set(false);
    expect((await a.next()).value).toBe(false);
    const b = watch.watch(abort.signal)[Symbol.asyncIterator]();
    expect((await b.next()).value).toBe(false);
    readiness.set(true);
    expect([(await a.next()).value, (await b.next()).value]).toEqual([true, true]);
    abort.abort();
    expect(await a.next()).toEqual({ done: true, value: undefined });
  });

  it("conflates: a reader that falls behind gets the latest status, not the backlog", async () => {
    const readiness = controlledReadiness(true);
    const watch = createReadinessWatch(() => readiness.check(), 1);
    const abort = new AbortController();
    const reader = watch.watch(abort.signal)[Symbol.asyncIterator]();
    expect((await reader.next()).value).toBe(true);
    // Down, up, down again while the reader reads nothing (each flip seen by a poll).
    for (const value of [false, true, false]) {
      readiness.set(value);
      await readiness.asked(2);
    }
    expect((await reader.next()).value).toBe(false);
    // Nothing else is pending: polls go by (readiness unchanged) and the read still waits.
    const next = reader.next();
    expect(await Promise.race([next.then(() => "a backlog value"), readiness.asked(3).then(() => "waiting")])).toBe("waiting");
    readiness.set(true);
    expect((await next).value).toBe(true);
    abort.abort();
  });

  it("counts a failing check as not ready", async () => {
    const watch = createReadinessWatch(() => Promise.reject(new Error("broker gone")), 1);
    expect(await watch.check()).toBe(false);
    const abort = new AbortController();
    const reader = watch.watch(abort.signal)[Symbol.asyncIterator]();
    expect((await reader.next()).value).toBe(false);
    abort.abort();
    expect((await reader.next()).done).toBe(true);
  });
});
