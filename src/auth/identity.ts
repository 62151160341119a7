import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { RoomGrants } from "./room-grants.js";

/** Who is calling: the verified claims of the caller's token. */
export interface Identity {
  /** The token's `sub` claim: the user id. */
  readonly userId: string;
  /** The token's `roles` claim, such as `publisher` or `worker`. */
  readonly roles: ReadonlySet<string>;
  /** When the token expires, in milliseconds since the Unix epoch; undefined when it has no `exp`. */
  readonly expiresAt: number | undefined;
  /** Set when the caller presented an API key (api-keys.ts): the key's name, what the log names the caller by. */
  readonly apiKeyName?: string;
  /** The token's `rooms` claim: rooms it grants reading or writing; undefined when it has none. */
  readonly rooms?: RoomGrants;
}

/** Context key under which the auth interceptor stores the caller's identity. */
export const identityKey = createContextKey<Identity | undefined>(undefined, { description: "rivulet identity" });

/** The caller's identity; throws `unauthenticated` when the call carries none. */
export function identityOf(context: HandlerContext): Identity {
  const identity = context.values.get(identityKey);
  if (!identity) throw new ConnectError("missing credentials", Code.Unauthenticated);
  return identity;
}

/** Throws `permission_denied` unless the identity has the role. */
export function requireRole(identity: Identity, role: string): void {
  if (!identity.roles.has(role)) {
    throw new ConnectError(`the "${role}" role is required`, Code.PermissionDenied);
  }
}
