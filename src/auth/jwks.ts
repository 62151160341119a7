import { readFileSync } from "node:fs";
import https from "node:https";
import { createLocalJWKSet, createRemoteJWKSet, customFetch, type FetchImplementation, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";

export interface JwksOptions {
  /** A JWKS file path, or an https:// URL serving one. */
  readonly source: string;
  /** PEM file of CA certificates trusted for the URL (a private CA); the system's when unset. */
  readonly caFile?: string;
  /** How long fetched keys are used before they are fetched again. */
  readonly cacheMaxAgeMs: number;
}

/**
 * The public keys that RS256/ES256 tokens are checked against. A file is read
 * once at start (a bad file fails the start, not the first call). A URL is
 * fetched by jose on first use and cached for `cacheMaxAgeMs`; a token naming
 * an unknown `kid` refetches at most every 30 s, so key rotation needs no
 * restart and a flood of bad `kid`s cannot flood the key server.
 */
export function createJwks(options: JwksOptions): JWTVerifyGetKey {
  if (!options.source.startsWith("https://")) {
    const set = JSON.parse(readFileSync(options.source, "utf8")) as JSONWebKeySet;
    if (!Array.isArray(set.keys)) throw new Error(`${options.source} is not a JWKS: it has no "keys" array`);
    return createLocalJWKSet(set);
  }
  const ca = options.caFile === undefined ? undefined : readFileSync(options.caFile);
  return createRemoteJWKSet(new URL(options.source), {
    cacheMaxAge: options.cacheMaxAgeMs,
    timeoutDuration: 5000,
    ...(ca ? { [customFetch]: fetchTrusting(ca) } : {}),
  });
}

/**
 * A fetch for jose that trusts the given CA. Node's global fetch takes no CA
 * option (only NODE_EXTRA_CA_CERTS at process start), so this one GET goes
 * through node:https instead.
 */
function fetchTrusting(ca: Buffer): FetchImplementation {
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const request = https.get(url, { ca, headers: Object.fromEntries(init.headers), signal: init.signal }, (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          // A key set is a few KiB; a server streaming more is refused.
          if (size > 1024 * 1024) request.destroy(new Error("JWKS response over 1 MiB"));
          else chunks.push(chunk);
        });
        response.on("end", () => resolve(new Response(Buffer.concat(chunks), { status: response.statusCode ?? 500 })));
        response.on("error", reject);
      });
      request.on("error", reject);
    });
}
