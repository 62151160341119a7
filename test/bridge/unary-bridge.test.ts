import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoRequestSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { metricValue, type TestServer } from "../helpers/server.js";
import {
  echoPath,
  infoPath,
  maxMessageBytes,
  postHttp1,
  postHttp2,
  startUnaryBridgeServer,
  stopUnaryBridgeServer,
  type Answer,
} from "../helpers/unary-bridge-server.js";

/**
 * Connect unary calls in binary Protobuf are answered by the unary bridge
 * (src/bridge/rpc/unary-bridge.ts); connect-node answers every other request.
 * Differential: each request is sent twice on the same server, once with
 * `content-type: application/proto` (the bridge takes exactly that spelling)
 * and once with `Application/Proto` (the same media type to connect-node,
 * which the bridge passes on), and both answers must match byte for byte:
 * status, every header but `date` in its order, and the body. The bridge's
 * counter proves which path each took.
 */

describe("the unary bridge answers Connect unary calls as connect-node does", () => {
  let server: TestServer;
  let session: http2.ClientHttp2Session;
  let users = 0;
  beforeAll(async () => {
    ({ server, session } = await startUnaryBridgeServer());
  });
  afterAll(() => stopUnaryBridgeServer(server, session));

  const bridged = () => metricValue(server.url, 'rivulet_unary_bridge_calls_total{protocol="connect"}');

  const post = (version: "1.1" | "2", path: string, headers: Record<string, string>, body: Uint8Array) =>
    version === "1.1" ? postHttp1(server.url, path, headers, body) : postHttp2(session, path, headers, body);

  /** The same request through the bridge and through connect-node: both answers, after checking which path each took. */
  async function both(version: "1.1" | "2", path: string, headers: Record<string, string>, body: Uint8Array): Promise<{ bridge: Answer; reference: Answer }> {
    const send = (path: string, headers: Record<string, string>, body: Uint8Array) => post(version, path, headers, body);
    const before = await bridged();
    const bridge = await send(path, { ...headers, "content-type": "application/proto" }, body);
    expect(await bridged(), "the bridge took the call").toBe(before + 1);
    const reference = await send(path, { ...headers, "content-type": "Application/Proto" }, body);
    expect(await bridged(), "connect-node took the call").toBe(before + 1);
    return { bridge, reference };
  }

  async function bearer(roles: string[] = []): Promise<Record<string, string>> {
    return { authorization: `Bearer ${await server.token(`unary-user-${++users}`, roles)}` };
  }

  const echo = (text: string) => toBinary(EchoRequestSchema, create(EchoRequestSchema, { text }));
  const errorOf = (answer: Answer): unknown => JSON.parse(Buffer.from(answer.body, "base64").toString());

  describe.each(["1.1", "2"] as const)("over HTTP/%s", (version) => {
    it("success: the message, content-type and content-length", async () => {
      const { bridge, reference } = await both(version, echoPath, await bearer(), echo("hello"));
      expect(bridge).toEqual(reference);
      expect(bridge.status).toBe(200);
      expect(bridge.headers.filter(([name]) => name.startsWith("content-"))).toEqual([
        ["content-length", "7"],
        ["content-type", "application/proto"],
      ]);
    });

    it("success over 1 KiB with accept-encoding: gzip, compressed alike", async () => {
      const { bridge, reference } = await both(version, echoPath, { ...(await bearer()), "accept-encoding": "gzip" }, echo("x".repeat(2000)));
      expect(bridge).toEqual(reference);
      expect(bridge.headers).toContainEqual(["content-encoding", "gzip"]);
    });

    it.each([
      ["invalid_argument", "", 400, { code: "invalid_argument", message: "text is required" }],
      ["internal (a bug's error, hidden)", "crash", 500, { code: "internal", message: "internal error" }],
    ])("%s", async (_name, text, status, json) => {
      const { bridge, reference } = await both(version, echoPath, await bearer(), echo(text));
      expect(bridge).toEqual(reference);
      expect(bridge.status).toBe(status);
      expect(bridge.headers).toContainEqual(["content-type", "application/json"]);
      expect(errorOf(bridge)).toEqual(json);
    });

    it("unauthenticated: no token", async () => {
      const { bridge, reference } = await both(version, echoPath, {}, echo("hello"));
      expect(bridge).toEqual(reference);
      expect(bridge.status).toBe(401);
      expect(errorOf(bridge)).toMatchObject({ code: "unauthenticated" });
    });

    it("permission_denied: the server API without the admin role", async () => {
      const { bridge, reference } = await both(version, infoPath, await bearer(), new Uint8Array());
      expect(bridge).toEqual(reference);
      expect(bridge.status).toBe(403);
      expect(errorOf(bridge)).toEqual({ code: "permission_denied", message: 'the "admin" role is required' });
    });

    it("resource_exhausted from the rate limit, with retry-after", async () => {
      const headers = await bearer();
      // Two calls empty the user's bucket (burst 2, both answered by the bridge).
      for (let i = 0; i < 2; i++) expect((await post(version, echoPath, { ...headers, "content-type": "application/proto" }, echo("x"))).status).toBe(200);
      const { bridge, reference } = await both(version, echoPath, headers, echo("hello"));
      // The message says how many milliseconds are left, which moves between the two calls.
      const steady = (answer: Answer) => ({
        ...answer,
        headers: answer.headers.filter(([name]) => name !== "content-length"),
        body: JSON.stringify(errorOf(answer)).replace(/retry in \d+ ms/, "retry in N ms"),
      });
      expect(steady(bridge)).toEqual(steady(reference));
      expect(bridge.status).toBe(429);
      expect(bridge.headers).toContainEqual(["retry-after", "1000"]);
      expect(errorOf(bridge)).toMatchObject({ code: "resource_exhausted" });
    });

    it("deadline_exceeded after connect-timeout-ms", async () => {
      const { bridge, reference } = await both(version, echoPath, { ...(await bearer()), "connect-timeout-ms": "20" }, echo("wait"));
      expect(bridge).toEqual(reference);
      expect(bridge.status).toBe(504);
      expect(errorOf(bridge)).toMatchObject({ code: "deadline_exceeded" });
    });

    it("invalid_argument: a malformed connect-timeout-ms", async () => {
      const { bridge, reference } = await both(version, echoPath, { ...(await bearer()), "connect-timeout-ms": "soon" }, echo("hello"));
      expect(bridge).toEqual(reference);
      expect(errorOf(bridge)).toEqual({ code: "invalid_argument", message: "protocol error: invalid connect timeout value: soon" });
    });

    it("resource_exhausted: a body over readMaxBytes", async () => {
      const body = echo("x".repeat(maxMessageBytes + 100));
      const { bridge, reference } = await both(version, echoPath, await bearer(), body);
      expect(bridge).toEqual(reference);
      expect(bridge.status).toBe(429);
      expect(errorOf(bridge)).toMatchObject({ code: "resource_exhausted" });
    });

    it("internal: a body that is not the request message", async () => {
      const { bridge, reference } = await both(version, echoPath, await bearer(), new Uint8Array([0xff, 0xff, 0xff]));
      expect(bridge).toEqual(reference);
      expect(bridge.status).toBe(500);
    });
  });

  it("over HTTP/1.1, a declared content-length over readMaxBytes is refused before the body", async () => {
    const body = echo("x".repeat(maxMessageBytes + 100));
    const { bridge, reference } = await both("1.1", echoPath, { ...(await bearer()), "content-length": String(body.length) }, body);
    expect(bridge).toEqual(reference);
    expect(errorOf(bridge)).toEqual({
      code: "resource_exhausted",
      message: `message size ${body.length} is larger than configured readMaxBytes ${maxMessageBytes}`,
    });
  });

  it("JSON and compressed requests go on to connect-node", async () => {
    const before = await bridged();
    const headers = await bearer();
    const json = await postHttp2(session, echoPath, { ...headers, "content-type": "application/json" }, Buffer.from(JSON.stringify({ text: "hi" })));
    expect([json.status, Buffer.from(json.body, "base64").toString()]).toEqual([200, '{"text":"hi"}']);
    const compressed = await postHttp2(session, echoPath, { ...headers, "content-type": "application/proto", "content-encoding": "br" }, echo("hi"));
    expect(compressed.status).toBe(400);
    expect(await bridged()).toBe(before);
  });
});
