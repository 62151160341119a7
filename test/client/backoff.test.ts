import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../src/client/backoff.js";

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
});
