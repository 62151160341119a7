import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { publicError } from "../../src/call/public-error.js";
import { errorJson } from "../../src/wire/error-json.js";

/** What every bridge sends of a failure: the Connect error JSON of its public error. */
const shown = (reason: unknown) => errorJson(publicError(reason).error);

describe("public errors", () => {
  it("keep a ConnectError's code and message", () => {
    expect(shown(new ConnectError("no such job", Code.NotFound))).toEqual({ code: "not_found", message: "no such job" });
    expect(shown(new ConnectError("slow", Code.ResourceExhausted))).toEqual({ code: "resource_exhausted", message: "slow" });
    expect(publicError(new ConnectError("slow", Code.ResourceExhausted)).hidden).toBeUndefined();
  });

  it("hide anything else behind internal, keeping the original for the logs", () => {
    const bug = new Error("database password is hunter2");
    expect(shown(bug)).toEqual({ code: "internal", message: "internal error" });
    expect(shown("a string")).toEqual({ code: "internal", message: "internal error" });
    expect(publicError(bug).hidden).toBe(bug);
  });
});
