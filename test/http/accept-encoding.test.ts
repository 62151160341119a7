import { describe, expect, it } from "vitest";
import { acceptsGzip } from "../../src/http/accept-encoding.js";

/** RFC 9110 §12.5.3 Accept-Encoding, as `acceptsGzip` reads it: literal headers from real clients and edge cases. */
describe("acceptsGzip", () => {
  it.each([
    ["gzip, deflate, br, zstd", true], // Chromium
    ["gzip, deflate", true], // undici's fetch
    ["gzip", true],
    ["GZIP", true],
    ["x-gzip", true],
    ["br;q=1.0, gzip;q=0.8, *;q=0.1", true],
    ["gzip;q=0.001", true],
    ["gzip ; q=1", true],
    ["*", true],
    ["*;q=0.5", true],
    ["identity, *;q=1", true],
  ])("%j accepts gzip", (header, expected) => {
    expect(acceptsGzip(header)).toBe(expected);
  });

  it.each([
    [undefined, "no header: the client did not ask"],
    ["", "empty: identity only"],
    ["identity", "identity only"],
    ["deflate, br", "gzip not listed, no wildcard"],
    ["gzip;q=0", "refused"],
    ["gzip;q=0.000", "refused"],
    ["gzip;q=0, *", "an explicit refusal beats the wildcard"],
    ["*;q=0", "wildcard refused"],
    ["*;q=0, deflate", "wildcard refused"],
    ["gzip;q=2", "q above 1 is malformed: the entry is ignored"],
    ["gzip;q=0.5000", "more than three decimals is malformed"],
    ["gzip;q=", "empty q is malformed"],
    ["gzip;q=abc", "non-numeric q is malformed"],
    ["gzipper", "another coding"],
  ])("%j does not accept gzip (%s)", (header, _why) => {
    expect(acceptsGzip(header)).toBe(false);
  });

  it("takes the most generous of repeated entries (Node joins repeated headers with commas)", () => {
    expect(acceptsGzip("gzip;q=0, gzip;q=0.5")).toBe(true);
    expect(acceptsGzip("gzip;q=2, gzip")).toBe(true);
  });
});
