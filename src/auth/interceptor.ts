import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { streamControlsKey } from "../limits/stream-guard.js";
import { findBearerToken } from "./credentials.js";
import { identityKey } from "./identity.js";
import type { TokenVerifier } from "./tokens.js";

/**
 * Authenticates every call, on every transport: the Connect router applies it
 * to Connect, gRPC and gRPC-Web, and the bridges invoke methods through the
 * same interceptor list. A call without valid credentials fails with
 * `unauthenticated` before any service code runs, and a stream outlives its
 * token by no more than a timer tick: when `exp` passes, it ends with
 * `unauthenticated` and the client resumes from its cursor with a fresh token.
 */
export function createAuthInterceptor(verifier: TokenVerifier): Interceptor {
  return (next) => async (request) => {
    const token = findBearerToken(request.header);
    if (token === undefined || token === "") {
      throw new ConnectError("missing credentials: send Authorization: Bearer <token>", Code.Unauthenticated);
    }
    const identity = await verifier.verify(token);
    request.contextValues.set(identityKey, identity);
    if (identity.expiresAt !== undefined) {
      request.contextValues.get(streamControlsKey)?.endBy(identity.expiresAt, Code.Unauthenticated, "token expired: resume with a fresh token");
    }
    return next(request);
  };
}
