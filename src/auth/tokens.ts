import { randomBytes } from "node:crypto";
import { errors, jwtVerify, SignJWT } from "jose";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Identity } from "./identity.js";

/** Verifies bearer tokens and turns their claims into an Identity. */
export interface TokenVerifier {
  verify(token: string): Promise<Identity>;
}

/** Mints tokens: development mode's `/dev/token` and tests. */
export interface TokenMinter {
  mint(claims: { userId: string; roles?: readonly string[]; ttlSeconds?: number }): Promise<string>;
}

const maxTokenLength = 8192;

/**
 * HS256 tokens with the claims `sub` (user id), `roles` (string array) and
 * `exp`. Only HS256 is accepted: `alg: none` and other algorithms are refused
 * by jose's algorithm allow-list.
 */
export function createHmacTokens(secret: string | Uint8Array): TokenVerifier & TokenMinter {
  const key = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
  return {
    async verify(token: string): Promise<Identity> {
      if (token.length > maxTokenLength) throw unauthenticated("token too long");
      try {
        const { payload } = await jwtVerify(token, key, { algorithms: ["HS256"], requiredClaims: ["sub", "exp"] });
        const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === "string") : [];
        if (typeof payload.sub !== "string" || payload.sub === "") throw unauthenticated("token has no subject");
        return { userId: payload.sub, roles: new Set(roles), expiresAt: (payload.exp ?? 0) * 1000 };
      } catch (error) {
        if (error instanceof ConnectError) throw error;
        if (error instanceof errors.JWTExpired) throw unauthenticated("token expired");
        throw unauthenticated("invalid token");
      }
    },
    mint({ userId, roles = [], ttlSeconds = 3600 }): Promise<string> {
      return new SignJWT({ roles: [...roles] })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setSubject(userId)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
        .sign(key);
    },
  };
}

/** A random secret for development mode: tokens die with the process. */
export function createDevelopmentSecret(): Uint8Array {
  return randomBytes(32);
}

function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}
