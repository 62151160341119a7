// Token verification end to end: JWKS (a file and an https:// URL behind a
// private CA), issuer and audience, nbf/exp, and the refusals (alg none,
// algorithm confusion, unknown keys), each as a generated Connect client sees it.
import { readFileSync, writeFileSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { base64url, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { createTestCertificate } from "../helpers/tls.js";

interface SigningKey {
  readonly kid: string;
  readonly alg: "RS256" | "ES256";
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
  readonly spki: string;
}

async function signingKey(alg: "RS256" | "ES256", kid: string): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" }, spki: await exportSPKI(publicKey) };
}

interface Claims {
  readonly sub?: string;
  readonly iss?: string;
  readonly aud?: string;
  readonly exp?: number;
  readonly nbf?: number;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function sign(key: SigningKey, claims: Claims = {}): Promise<string> {
  return new SignJWT({ roles: [] })
    .setProtectedHeader({ alg: key.alg, kid: key.kid })
    .setSubject(claims.sub ?? "alice")
    .setExpirationTime(claims.exp ?? nowSeconds() + 3600)
    .setIssuer(claims.iss ?? "https://issuer.example")
    .setAudience(claims.aud ?? "rivulet")
    .setNotBefore(claims.nbf ?? nowSeconds() - 10)
    .sign(key.privateKey);
}

/** An unsecured JWT (RFC 7519 §6): header alg "none", empty signature. */
function unsecured(): string {
  const encode = (value: object) => base64url.encode(JSON.stringify(value));
  return `${encode({ alg: "none", typ: "JWT" })}.${encode({ sub: "alice", exp: nowSeconds() + 3600, iss: "https://issuer.example", aud: "rivulet" })}.`;
}

/** What a Send with this token gets: "ok" or the Connect code's name. */
async function outcome(server: TestServer, token: string): Promise<string> {
  const chat = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
  try {
    await chat.send({ room: "tokens", text: "hi" }, bearer(token));
    return "ok";
  } catch (error) {
    return Code[ConnectError.from(error).code];
  }
}

describe("tokens from a JWKS file, with issuer and audience", () => {
  let server: TestServer;
  let rsa: SigningKey;
  let ec: SigningKey;
  let stranger: SigningKey;
  beforeAll(async () => {
    [rsa, ec, stranger] = await Promise.all([signingKey("RS256", "rsa-1"), signingKey("ES256", "ec-1"), signingKey("RS256", "rsa-1")]);
    const file = join(testTempDir("rivulet-jwks-"), "jwks.json");
    writeFileSync(file, JSON.stringify({ keys: [rsa.jwk, ec.jwk] }));
    // JWKS only: no HS256 secret is accepted at all.
    server = await startTestServer({ config: { authSecret: undefined, authJwks: file, authIssuer: "https://issuer.example", authAudience: "rivulet" } });
  });
  afterAll(() => server.close());

  it("is not development mode", () => {
    expect(server.server.development).toBe(false);
  });

  it("accepts RS256 and ES256 tokens signed by keys of the set", async () => {
    expect(await outcome(server, await sign(rsa))).toBe("ok");
    expect(await outcome(server, await sign(ec))).toBe("ok");
  });

  it.each([
    ["a key outside the set (same kid)", async () => sign(stranger)],
    ["another issuer", async () => sign(rsa, { iss: "https://evil.example" })],
    ["another audience", async () => sign(rsa, { aud: "someone-else" })],
    ["an expired token", async () => sign(rsa, { exp: nowSeconds() - 60 })],
    ["a token not valid before a minute from now", async () => sign(rsa, { nbf: nowSeconds() + 60 })],
    ["alg none", () => Promise.resolve(unsecured())],
    // Algorithm confusion: the set's public key used as an HMAC secret.
    [
      "HS256 signed with the RSA public key",
      async () =>
        new SignJWT({})
          .setProtectedHeader({ alg: "HS256", kid: "rsa-1" })
          .setSubject("alice")
          .setExpirationTime("1h")
          .setIssuer("https://issuer.example")
          .setAudience("rivulet")
          .sign(new TextEncoder().encode(rsa.spki)),
    ],
    ["HS256 signed with the test secret (no secret configured)", async () => server.token("alice")],
    ["a signature cut off", async () => (await sign(rsa)).replace(/\.[^.]+$/, ".")],
  ])("refuses %s with unauthenticated", async (_name, token) => {
    expect(await outcome(server, await token())).toBe("Unauthenticated");
    // The server carries on.
    expect(await outcome(server, await sign(rsa))).toBe("ok");
  });
});

describe("tokens from an https:// JWKS behind a private CA", () => {
  let server: TestServer;
  let keyServer: https.Server;
  let key: SigningKey;
  let fetches = 0;
  beforeAll(async () => {
    key = await signingKey("ES256", "ec-remote");
    const certificate = createTestCertificate();
    keyServer = https.createServer({ cert: readFileSync(certificate.certFile), key: readFileSync(certificate.keyFile) }, (_req, res) => {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [key.jwk] }));
    });
    await new Promise<void>((resolve) => keyServer.listen(0, "127.0.0.1", resolve));
    const url = `https://127.0.0.1:${(keyServer.address() as AddressInfo).port}/jwks.json`;
    server = await startTestServer({ config: { authSecret: undefined, authJwks: url, authJwksCa: certificate.certFile } });
  });
  afterAll(async () => {
    await server.close();
    keyServer.close();
  });

  it("fetches the set once and caches it", async () => {
    expect(await outcome(server, await sign(key))).toBe("ok");
    expect(await outcome(server, await sign(key))).toBe("ok");
    expect(fetches).toBe(1);
  });
});
