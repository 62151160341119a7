import { createContextKey } from "@connectrpc/connect";

/**
 * What a connection that carries many calls (a WebSocket) remembers of the
 * credentials verified on it: the last token, what it proved (the auth
 * layer's identity, hence the type parameter) and until when that holds.
 * The auth interceptor fills it and reads it: a later call on the same
 * connection with the same token is authenticated without verifying it again,
 * not even through the verified-token cache's lookup and its promise. Each
 * call still names its token (the protocol lets calls on one socket use
 * different ones), so this is a memo of the last one, not a session.
 */
export class ConnectionCredentials<T> {
  token: string | undefined = undefined;
  verified: T | undefined = undefined;
  /** Ms since the Unix epoch: the token's expiry, or the verified-token cache's own bound, whichever is first. */
  validUntil = 0;
}

/** Where a transport puts its connection's memo for the auth interceptor. */
export const connectionCredentialsKey = createContextKey<ConnectionCredentials<unknown> | undefined>(undefined, {
  description: "rivulet connection credentials",
});
