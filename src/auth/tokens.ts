import { randomBytes } from "node:crypto";
import { decodeProtectedHeader, errors, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Identity } from "./identity.js";
import { RoomGrants, type RoomAction } from "./room-grants.js";
import { createTokenCache, type TokenCache } from "./token-cache.js";

/** Verifies bearer tokens and turns their claims into an Identity. */
export interface TokenVerifier {
  verify(token: string): Promise<Identity>;
}

/** Mints tokens: development mode's `/dev/token` and tests. */
export interface TokenMinter {
  mint(claims: MintClaims): Promise<string>;
}

/** What a minted token says. */
export interface MintClaims {
  readonly userId: string;
  readonly roles?: readonly string[];
  /** The `rooms` claim: room patterns to the actions they grant (docs/security.md, "Rooms and access"). */
  readonly rooms?: Readonly<Record<string, readonly RoomAction[]>>;
  readonly ttlSeconds?: number;
}

/** Claims every token must carry beyond `sub` and `exp`, when configured. */
export interface ClaimRules {
  /** The `iss` a token must name. */
  readonly issuer?: string;
  /** The `aud` a token must name (one of its audiences). */
  readonly audience?: string;
}

/** Where a verifier finds its keys. */
export interface TokenKeys extends ClaimRules {
  /** The HS256 secret; tokens signed with HS256 are checked against it. */
  readonly secret?: Uint8Array;
  /** A JWKS key resolver (see jwks.ts); tokens signed with RS256 or ES256 are checked against it. */
  readonly jwks?: JWTVerifyGetKey;
}

const maxTokenLength = 8192;
/** Asymmetric algorithms accepted from a JWKS. */
const jwksAlgorithms = ["RS256", "ES256"];
/** Tolerated clock difference for `exp` and `nbf`, in seconds. */
export const clockToleranceSeconds = 5;
/** Verified tokens remembered per verifier (see token-cache.ts), and for how long at most. */
const cachedTokens = 10_000;
export const cachedTokenMaxAgeMs = 60_000;

/**
 * Verifies HS256 tokens against a secret and RS256/ES256 tokens against a JWKS,
 * checking `exp`, `nbf`, and `iss`/`aud` when configured.
 *
 * Each key source has its own algorithm allow-list, so `alg: none` is refused
 * and so is algorithm confusion: an HS256 token is never checked against a
 * JWKS public key used as an HMAC secret, and an RS256 token never against the
 * secret. The `alg` header only picks which allow-list applies; jose enforces it.
 */
export function createTokenVerifier(
  keys: TokenKeys,
  cache: TokenCache = createTokenCache({ maxEntries: cachedTokens, maxAgeMs: cachedTokenMaxAgeMs }),
): TokenVerifier {
  return {
    async verify(token: string): Promise<Identity> {
      if (token.length > maxTokenLength) throw unauthenticated("token too long");
      const cached = cache.get(token);
      if (cached !== undefined) return cached;
      let alg: unknown;
      try {
        alg = decodeProtectedHeader(token).alg;
      } catch {
        throw unauthenticated("invalid token");
      }
      try {
        const options = { issuer: keys.issuer, audience: keys.audience, requiredClaims: ["sub", "exp"], clockTolerance: clockToleranceSeconds };
        let payload: JWTPayload;
        if (alg === "HS256" && keys.secret) {
          ({ payload } = await jwtVerify(token, keys.secret, { ...options, algorithms: ["HS256"] }));
        } else if (typeof alg === "string" && jwksAlgorithms.includes(alg) && keys.jwks) {
          ({ payload } = await jwtVerify(token, keys.jwks, { ...options, algorithms: jwksAlgorithms }));
        } else {
          throw unauthenticated(`tokens signed with ${typeof alg === "string" ? alg : "no algorithm"} are not accepted`);
        }
        const identity = identityOfClaims(payload);
        // jose refuses a token once `exp <= now - tolerance` (seconds): valid until (exp + tolerance) s.
        cache.set(token, identity, ((payload.exp ?? 0) + clockToleranceSeconds) * 1000);
        return identity;
      } catch (error) {
        throw toConnectError(error);
      }
    },
  };
}

/**
 * HS256 tokens with the claims `sub` (user id), `roles` (string array) and
 * `exp`, signed and verified with one secret.
 */
export function createHmacTokens(secret: string | Uint8Array, rules: ClaimRules = {}): TokenVerifier & TokenMinter {
  const key = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
  const verifier = createTokenVerifier({ ...rules, secret: key });
  return {
    verify: (token) => verifier.verify(token),
    mint({ userId, roles = [], rooms, ttlSeconds = 3600 }): Promise<string> {
      const jwt = new SignJWT({ roles: [...roles], ...(rooms === undefined ? {} : { rooms }) })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setSubject(userId)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds);
      if (rules.issuer !== undefined) jwt.setIssuer(rules.issuer);
      if (rules.audience !== undefined) jwt.setAudience(rules.audience);
      return jwt.sign(key);
    },
  };
}

/** A random secret, for a minter whose tokens nobody accepts (JWKS-only deployments). */
export function createRandomSecret(): Uint8Array {
  return randomBytes(32);
}

function identityOfClaims(payload: JWTPayload): Identity {
  if (typeof payload.sub !== "string" || payload.sub === "") throw unauthenticated("token has no subject");
  const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === "string") : [];
  const rooms = payload.rooms === undefined ? undefined : RoomGrants.parse(payload.rooms);
  if (typeof rooms === "string") throw unauthenticated(`token claim "rooms" ${rooms}`);
  return { userId: payload.sub, roles: new Set(roles), expiresAt: (payload.exp ?? 0) * 1000, rooms };
}

/** jose's errors as Connect errors: which claim failed is safe to tell; key-fetch failures are not the caller's fault. */
function toConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  if (error instanceof errors.JWTExpired) return unauthenticated("token expired");
  if (error instanceof errors.JWTClaimValidationFailed) return unauthenticated(`token claim "${error.claim}" is not acceptable (${error.reason})`);
  if (error instanceof errors.JWKSNoMatchingKey) return unauthenticated("token signed with an unknown key");
  if (error instanceof errors.JWKSTimeout) return new ConnectError("the key set could not be fetched in time", Code.Unavailable);
  // jose's generic error is only thrown for a bad key-set response; anything
  // that is no JOSEError at all is the fetch itself failing (network, TLS).
  if (!(error instanceof errors.JOSEError) || error.code === "ERR_JOSE_GENERIC") {
    return new ConnectError("the key set could not be fetched", Code.Unavailable, undefined, undefined, error);
  }
  return unauthenticated("invalid token");
}

function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}
