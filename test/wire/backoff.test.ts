import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backoffDelay, backoffOptions } from "../../src/wire/backoff.js";

describe("backoffDelay: exponential with full jitter and a cap", () => {
  const options = { initialMs: 100, maxMs: 1000 };

  it("doubles the ceiling per attempt up to the cap", () => {
    const almostOne = () => 0.999999;
    expect([0, 1, 2, 3, 4, 5, 60].map((attempt) => backoffDelay(attempt, options, almostOne))).toEqual([99, 199, 399, 799, 999, 999, 999]);
  });

  it("draws uniformly from zero to the ceiling (full jitter)", () => {
    expect(backoffDelay(3, options, () => 0)).toBe(0);
    expect(backoffDelay(3, options, () => 0.5)).toBe(400);
  });

  it("stays in [0, min(cap, initial × 2^attempt)) for any attempt and draw", () => {
    fc.assert(
      fc.property(fc.nat(10_000), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, random) => {
        const delay = backoffDelay(attempt, { initialMs: 500, maxMs: 30_000 }, () => random);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThan(30_000);
        expect(delay).toBeLessThan(500 * 2 ** attempt);
      }),
    );
  });
});

describe("backoffOptions: a client's options with the defaults filled in", () => {
  it("keeps what is given, else the client's first bound and a 30 s cap", () => {
    expect(backoffOptions(undefined, 500)).toEqual({ initialMs: 500, maxMs: 30_000 });
    expect(backoffOptions({ initialMs: 20 }, 500)).toEqual({ initialMs: 20, maxMs: 30_000 });
    expect(backoffOptions({ initialMs: undefined, maxMs: 50 }, 500)).toEqual({ initialMs: 500, maxMs: 50 });
  });
});
