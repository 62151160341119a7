import type { Identity } from "./identity.js";

export interface TokenCacheOptions {
  /** Tokens remembered at most; the oldest is forgotten first. */
  readonly maxEntries: number;
  /** How long one verification is trusted, however far off the token's `exp` is. */
  readonly maxAgeMs: number;
  /** Milliseconds since the Unix epoch (tests pass a fake clock). */
  readonly now?: () => number;
}

/** Identities of tokens verified recently, keyed by the whole token string. */
export interface TokenCache {
  /** The identity of a token verified before and still valid at this moment; undefined otherwise. */
  get(token: string): Identity | undefined;
  /** Remembers a token that was just verified, until `validUntil` (ms since the Unix epoch) at the latest. */
  set(token: string, identity: Identity, validUntil: number): void;
}

/**
 * Every call carries a token, and a client opening many streams sends the same
 * one each time: verifying it anew (header and claims parsing, an HMAC key
 * import, a signature check on the crypto thread pool) was the largest cost of
 * starting a stream. A token verified once is valid until its `exp` (the
 * claims checked at verification cannot change; `nbf` only gets further in
 * the past), so its identity is kept until then.
 *
 * The key is the token itself, signature included: a token that differs in
 * any byte is verified from scratch, and only tokens that verified are kept.
 * Entries also expire `maxAgeMs` after their verification, so a key removed
 * from a JWKS stops being honoured about as soon as without the cache.
 */
export function createTokenCache(options: TokenCacheOptions): TokenCache {
  const now = options.now ?? (() => Date.now());
  const entries = new Map<string, { readonly identity: Identity; readonly validUntil: number }>();
  return {
    get(token) {
      const entry = entries.get(token);
      if (entry === undefined) return undefined;
      if (now() < entry.validUntil) return entry.identity;
      entries.delete(token);
      return undefined;
    },
    set(token, identity, validUntil) {
      const time = now();
      const until = Math.min(validUntil, time + options.maxAgeMs);
      if (until <= time || options.maxEntries <= 0) return;
      entries.delete(token);
      // Insertion order is age order: the first entry is the oldest.
      while (entries.size >= options.maxEntries) entries.delete(entries.keys().next().value!);
      entries.set(token, { identity, validUntil: until });
    },
  };
}
