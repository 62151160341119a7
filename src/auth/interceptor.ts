import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { streamControlsKey } from "../call/stream-controls.js";
import { identifyApiKey, isApiKey, noApiKeys, type ApiKeys } from "./api-keys.js";
import { findBearerToken } from "./credentials.js";
import { identityKey, type Identity } from "./identity.js";
import { connectionCredentialsKey, type ConnectionCredentials } from "../call/connection-credentials.js";
import { cachedTokenMaxAgeMs, type TokenVerifier } from "./tokens.js";

/**
 * Authenticates every call, on every transport: the Connect router applies it
 * to Connect, gRPC and gRPC-Web, and the bridges invoke methods through the
 * same interceptor list. A call without valid credentials fails with
 * `unauthenticated` before any service code runs, and a stream outlives its
 * token by no more than a timer tick: when `exp` passes, it ends with
 * `unauthenticated` and the client resumes from its cursor with a fresh token.
 *
 * `publicServices` (full service names) are exempt: gRPC health and
 * reflection, which probes and tools call without credentials. A call to
 * them carries no identity, whatever token it sends.
 *
 * A token starting `rvk_` is an API key (`apiKeys`, see api-keys.ts), good
 * for AdminService only.
 */
export function createAuthInterceptor(verifier: TokenVerifier, publicServices: ReadonlySet<string> = new Set(), apiKeys: ApiKeys = noApiKeys): Interceptor {
  return (next) => async (request) => {
    if (publicServices.has(request.service.typeName)) return next(request);
    const token = findBearerToken(request.header);
    if (token === undefined || token === "") {
      throw new ConnectError("missing credentials: send Authorization: Bearer <token>", Code.Unauthenticated);
    }
    const identity = isApiKey(token)
      ? identifyApiKey(apiKeys, token, request.service.typeName)
      : await verified(token, request.contextValues.get(connectionCredentialsKey));
    request.contextValues.set(identityKey, identity);
    const controls = request.contextValues.get(streamControlsKey);
    if (controls) {
      // Listed as the user's open call, for as long as it is open: the server API's Disconnect ends it.
      controls.identify(identity.userId);
      if (identity.expiresAt !== undefined) controls.endBy(identity.expiresAt, Code.Unauthenticated, "token expired: resume with a fresh token");
    }
    return next(request);
  };

  /**
   * The token's identity: from the connection's memo when the connection
   * verified this very token before and it still holds (a synchronous answer:
   * no promise per call), else verified and remembered there.
   */
  function verified(token: string, memo: ConnectionCredentials<unknown> | undefined): Identity | Promise<Identity> {
    // The memo holds what this interceptor put there, and nothing else writes it.
    const credentials = memo as ConnectionCredentials<Identity> | undefined;
    if (credentials?.token === token && credentials.verified !== undefined && Date.now() < credentials.validUntil) return credentials.verified;
    const identity = verifier.verify(token);
    if (credentials === undefined) return identity;
    return identity.then((proved) => {
      credentials.token = token;
      credentials.verified = proved;
      credentials.validUntil = Math.min(proved.expiresAt ?? Infinity, Date.now() + cachedTokenMaxAgeMs);
      return proved;
    });
  }
}
