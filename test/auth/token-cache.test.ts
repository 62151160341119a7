// The verified-token cache: what it remembers, for how long, and that the
// verifier built on it still refuses what jose refuses.
import { Code, ConnectError } from "@connectrpc/connect";
import { SignJWT } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Identity } from "../../src/auth/identity.js";
import { createTokenCache } from "../../src/auth/token-cache.js";
import { createHmacTokens, createTokenVerifier } from "../../src/auth/tokens.js";

const alice: Identity = { userId: "alice", roles: new Set(), expiresAt: undefined };
const secret = new TextEncoder().encode("a secret of thirty-two bytes....");

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    const connectError = ConnectError.from(error);
    return `${Code[connectError.code]}: ${connectError.rawMessage}`;
  }
}

describe("createTokenCache", () => {
  it("keeps an identity until validUntil, then forgets it", () => {
    let now = 1_000;
    const cache = createTokenCache({ maxEntries: 10, maxAgeMs: 60_000, now: () => now });
    cache.set("t", alice, 5_000);
    now = 4_999;
    expect(cache.get("t")).toBe(alice);
    now = 5_000;
    expect(cache.get("t")).toBeUndefined();
    now = 1_000;
    expect(cache.get("t")).toBeUndefined();
  });

  it("trusts a verification for maxAgeMs at most", () => {
    let now = 0;
    const cache = createTokenCache({ maxEntries: 10, maxAgeMs: 100, now: () => now });
    cache.set("t", alice, 1_000_000);
    now = 99;
    expect(cache.get("t")).toBe(alice);
    now = 100;
    expect(cache.get("t")).toBeUndefined();
  });

  it("ignores tokens already expired", () => {
    const cache = createTokenCache({ maxEntries: 10, maxAgeMs: 100, now: () => 50 });
    cache.set("t", alice, 50);
    expect(cache.get("t")).toBeUndefined();
  });

  it("holds at most maxEntries, forgetting the oldest first", () => {
    const cache = createTokenCache({ maxEntries: 2, maxAgeMs: 100, now: () => 0 });
    cache.set("a", alice, 10);
    cache.set("b", alice, 10);
    cache.set("c", alice, 10);
    expect([cache.get("a"), cache.get("b"), cache.get("c")]).toEqual([undefined, alice, alice]);
  });

  it("knows a token only by its exact string", () => {
    const cache = createTokenCache({ maxEntries: 2, maxAgeMs: 100, now: () => 0 });
    cache.set("header.payload.signature", alice, 10);
    expect(cache.get("header.payload.signaturf")).toBeUndefined();
  });
});

describe("a verifier with its cache", () => {
  afterEach(() => vi.useRealTimers());

  it("answers a token verified before from its cache", async () => {
    const cache = createTokenCache({ maxEntries: 10, maxAgeMs: 60_000 });
    const verifier = createTokenVerifier({ secret }, cache);
    const token = await createHmacTokens(secret).mint({ userId: "alice", roles: ["publisher"] });
    expect(cache.get(token)).toBeUndefined();
    const identity = await verifier.verify(token);
    expect(identity.userId).toBe("alice");
    expect(cache.get(token)).toBe(identity);
    expect(await verifier.verify(token)).toBe(identity);
  });

  it("still refuses a cached token once it has expired, as jose would", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(1_800_000_000_000);
    const cache = createTokenCache({ maxEntries: 10, maxAgeMs: 60_000 });
    const verifier = createTokenVerifier({ secret }, cache);
    const token = await createHmacTokens(secret).mint({ userId: "alice", ttlSeconds: 20 });
    expect((await verifier.verify(token)).userId).toBe("alice");
    // 5 s of clock tolerance: still good (from the cache) 24.999 s on, refused at 25 s.
    vi.setSystemTime(1_800_000_024_999);
    expect(cache.get(token)).toBeDefined();
    expect(await refusal(verifier.verify(token))).toBe("ok");
    vi.setSystemTime(1_800_000_025_000);
    expect(await refusal(verifier.verify(token))).toBe("Unauthenticated: token expired");
  });

  it("refuses a cached token's claims under another signature", async () => {
    const verifier = createHmacTokens(secret);
    const token = await verifier.mint({ userId: "alice" });
    await verifier.verify(token);
    const [header, payload] = token.split(".");
    const forged = await createHmacTokens("another secret of 32 bytes......").mint({ userId: "alice" });
    const otherSignature = forged.split(".")[2]!;
    expect(await refusal(verifier.verify(`${header}.${payload}.${otherSignature}`))).toBe("Unauthenticated: invalid token");
    expect(await refusal(verifier.verify(`${header}.${payload}.`))).toBe("Unauthenticated: invalid token");
    expect((await verifier.verify(token)).userId).toBe("alice");
  });

  it("does not remember refusals: a token refused before its nbf is accepted after", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(1_800_000_000_000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setNotBefore(1_800_000_060)
      .setExpirationTime(1_800_003_600)
      .sign(secret);
    const verifier = createTokenVerifier({ secret });
    expect(await refusal(verifier.verify(token))).toMatch(/^Unauthenticated: token claim "nbf"/);
    vi.setSystemTime(1_800_000_060_000);
    expect(await refusal(verifier.verify(token))).toBe("ok");
  });
});
