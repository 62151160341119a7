import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { findBearerToken } from "./credentials.js";
import { identityKey } from "./identity.js";
import type { TokenVerifier } from "./tokens.js";

/**
 * Authenticates every call, on every transport: the Connect router applies it
 * to Connect, gRPC and gRPC-Web, and the bridges invoke methods through the
 * same interceptor list. A call without valid credentials fails with
 * `unauthenticated` before any service code runs.
 */
export function createAuthInterceptor(verifier: TokenVerifier): Interceptor {
  return (next) => async (request) => {
    const token = findBearerToken(request.header);
    if (token === undefined || token === "") {
      throw new ConnectError("missing credentials: send Authorization: Bearer <token>", Code.Unauthenticated);
    }
    request.contextValues.set(identityKey, await verifier.verify(token));
    return next(request);
  };
}
