/**
 * Finds the bearer token a request carries, in one place for every transport:
 * the `Authorization: Bearer` header first, then an `access_token` cookie
 * (browsers), then the `access_token` query parameter (EventSource and
 * WebSocket handshakes cannot set headers). Returns undefined when there is none.
 */
export function findBearerToken(headers: Headers, query?: URLSearchParams): string | undefined {
  const authorization = headers.get("authorization");
  if (authorization !== null) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match?.[1] ?? "";
  }
  const cookie = headers.get("cookie");
  if (cookie !== null) {
    for (const part of cookie.split(";")) {
      const eq = part.indexOf("=");
      if (eq > 0 && part.slice(0, eq).trim() === "access_token") return decodeCookieValue(part.slice(eq + 1).trim());
    }
  }
  return query?.get("access_token") ?? undefined;
}

/** A cookie value, percent-decoded; a malformed escape leaves it as sent, to fail verification (401) rather than throw. */
function decodeCookieValue(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * The `Authorization` value for a token found outside that header (cookie,
 * query parameter, WebSocket handshake). A token that cannot be a header
 * value (CR, LF, NUL, spaces, non-ASCII) becomes one that fails verification,
 * so it gets the same `unauthenticated` as any bad token instead of an error
 * from the Headers API.
 */
export function bearerAuthorization(token: string): string {
  return `Bearer ${/^[\x21-\x7e]+$/.test(token) ? token : "-"}`;
}
