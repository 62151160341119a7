import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../src/client/websocket-session.js";

describe("reconnect backoff", () => {
  it("is full jitter under an exponential bound with a cap", () => {
    expect(backoffDelay(0, 500, 30_000, 0.5)).toBe(250);
    expect(backoffDelay(3, 500, 30_000, 0.999)).toBeCloseTo(3996);
    expect(backoffDelay(10, 500, 30_000, 0.5)).toBe(15_000);
    expect(backoffDelay(0, 500, 30_000, 0)).toBe(0);
    fc.assert(
      fc.property(fc.nat(10_000), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, random) => {
        const delay = backoffDelay(attempt, 500, 30_000, random);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(30_000);
        expect(delay).toBeLessThan(500 * 2 ** attempt);
      }),
    );
  });
});
