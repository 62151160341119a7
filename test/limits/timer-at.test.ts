import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { maxTimerDelayMs, timerAt } from "../../src/limits/timer-at.js";

// Node's clock, faked: the fake timers fire a delay over 2^31-1 ms after 1 ms, as Node does.
describe("timerAt", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("fires once at a deadline beyond setTimeout's range, not after 1 ms", () => {
    const deadline = maxTimerDelayMs * 2 + 5000;
    const fired: number[] = [];
    timerAt(deadline, () => fired.push(Date.now()));
    vi.advanceTimersByTime(10);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(maxTimerDelayMs);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(deadline);
    expect(fired).toEqual([deadline]);
  });

  it("fires at once, synchronously, when the deadline has passed", () => {
    let fired = 0;
    timerAt(-1, () => fired++);
    expect(fired).toBe(1);
    vi.advanceTimersByTime(1000);
    expect(fired).toBe(1);
  });

  it("fires nothing once cancelled, even after a re-arm", () => {
    let fired = 0;
    const cancel = timerAt(maxTimerDelayMs + 100, () => fired++);
    vi.advanceTimersByTime(maxTimerDelayMs);
    cancel();
    vi.advanceTimersByTime(maxTimerDelayMs);
    expect(fired).toBe(0);
  });

  it("arms nothing for an infinite deadline", () => {
    timerAt(Infinity, () => expect.unreachable());
    expect(vi.getTimerCount()).toBe(0);
  });
});
