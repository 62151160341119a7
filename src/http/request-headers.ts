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

/** A header's first value, or null when absent: what connect-es's helpers take (`Headers.get` would join repeats with ", "). */
export function singleHeader(value: string | string[] | undefined): string | null {
  return value === undefined ? null : Array.isArray(value) ? (value[0] ?? null) : value;
}
