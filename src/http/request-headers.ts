import type { IncomingHttpHeaders } from "node:http";

/** A Node request's headers as a fetch `Headers` object, HTTP/2 pseudo-headers (`:path`, …) left out. */
export function requestHeaders(req: { readonly headers: IncomingHttpHeaders }): Headers {
  const header = new Headers();
  for (const [key, value] of Object.entries(req.headers)) {
    if (key.startsWith(":") || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) header.append(key, item);
  }
  return header;
}
