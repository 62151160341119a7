import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { transientRetryMs } from "../../src/bridge/sse/transient-error.js";

const withRetryAfter = (value: string) => new ConnectError("rate limit", Code.ResourceExhausted, { "retry-after": value });

describe("transientRetryMs: which failures an SSE client should retry as is", () => {
  it.each([
    ["unavailable", new ConnectError("broker unavailable", Code.Unavailable), 2000],
    ["aborted", new ConnectError("lost a race", Code.Aborted), 2000],
    ["deadline_exceeded", new ConnectError("timed out", Code.DeadlineExceeded), 2000],
    ["resource_exhausted with retry-after above the retry", withRetryAfter("3"), 3000],
    ["resource_exhausted with retry-after below the retry", withRetryAfter("1"), 2000],
  ])("%s: transient", (_name, error, retryMs) => {
    expect(transientRetryMs(error, 2000)).toBe(retryMs);
  });

  it.each([
    ["resource_exhausted without retry-after (too many streams, a message too large)", new ConnectError("at most 2 streams", Code.ResourceExhausted)],
    ["resource_exhausted with an HTTP-date retry-after", withRetryAfter("Wed, 21 Oct 2026 07:28:00 GMT")],
    ["unauthenticated", new ConnectError("no token", Code.Unauthenticated)],
    ["permission_denied", new ConnectError("not yours", Code.PermissionDenied)],
    ["invalid_argument", new ConnectError("bad room", Code.InvalidArgument)],
    ["not_found", new ConnectError("no such job", Code.NotFound)],
    ["internal", new ConnectError("internal error", Code.Internal)],
  ])("%s: a refusal", (_name, error) => {
    expect(transientRetryMs(error, 2000)).toBeUndefined();
  });
});
