/**
 * Whether a request's `Accept-Encoding` lets the response be gzip-encoded
 * (RFC 9110 §12.5.3). A pure function over the header's value.
 *
 * - `gzip` and its alias `x-gzip` (§8.4.1.3) are acceptable when listed with
 *   a weight above zero (no `q` means 1); `gzip;q=0` refuses it whatever else
 *   the header says.
 * - Unlisted, gzip is acceptable when `*` is listed with a weight above zero.
 * - Codings are case-insensitive; an entry whose weight is malformed is
 *   ignored, as if it were absent.
 * - No header at all: §12.5.3 would allow any coding, but a client that does
 *   not ask cannot be assumed to decode, so the answer is no (as every common
 *   server does). An empty header asks for identity only.
 *
 * Node joins repeated headers with ", " before we see them.
 */
export function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  let gzip: number | undefined;
  let wildcard: number | undefined;
  for (const entry of header.split(",")) {
    const [codingPart, ...parameters] = entry.split(";");
    const coding = codingPart!.trim().toLowerCase();
    if (coding === "") continue;
    const weight = weightOf(parameters);
    if (weight === undefined) continue;
    // Of several entries for one coding, the most generous wins.
    if (coding === "gzip" || coding === "x-gzip") gzip = Math.max(gzip ?? 0, weight);
    else if (coding === "*") wildcard = Math.max(wildcard ?? 0, weight);
  }
  if (gzip !== undefined) return gzip > 0;
  return wildcard !== undefined && wildcard > 0;
}

/** RFC 9110 §12.4.2 qvalue: 0 to 1 with at most three decimals. */
const qvalue = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/** The entry's weight: 1 without `q`, undefined when `q` is malformed. */
function weightOf(parameters: readonly string[]): number | undefined {
  let weight = 1;
  for (const parameter of parameters) {
    const equals = parameter.indexOf("=");
    const name = parameter
      .slice(0, equals === -1 ? undefined : equals)
      .trim()
      .toLowerCase();
    if (name !== "q") continue;
    const value = equals === -1 ? "" : parameter.slice(equals + 1).trim();
    if (!qvalue.test(value)) return undefined;
    weight = Number(value);
  }
  return weight;
}
