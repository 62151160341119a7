import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { isTransient } from "../../src/wire/transient-codes.js";

const allCodes = Object.values(Code).filter((value): value is Code => typeof value === "number");
const transientOf = (limitLifts: boolean) => allCodes.filter((code) => isTransient(code, { limitLifts })).map((code) => Code[code]);

describe("isTransient: the one rule for failures worth retrying as is", () => {
  it("holds for unavailable, aborted and deadline_exceeded, and for no refusal", () => {
    expect(transientOf(false)).toEqual(["DeadlineExceeded", "Aborted", "Unavailable"]);
  });

  it("holds for resource_exhausted only when the limit lifts by itself", () => {
    expect(transientOf(true)).toEqual(["DeadlineExceeded", "ResourceExhausted", "Aborted", "Unavailable"]);
  });
});
