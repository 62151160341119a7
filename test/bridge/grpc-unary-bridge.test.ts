import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type ServiceImpl } from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport } from "@connectrpc/connect-node";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CounterService, EchoRequestSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { metricValue, startTestServer, type TestServer } from "../helpers/server.js";

/**
 * gRPC unary calls in binary Protobuf over HTTP/2 are answered by the unary
 * bridge (src/bridge/rpc/unary-bridge.ts); connect-node answers every other
 * request. Differential, as test/bridge/unary-bridge.test.ts for Connect:
 * each request is sent twice on the same connection, once with
 * `content-type: application/grpc` (or `application/grpc+proto`, the
 * spellings the bridge takes) and once with `Application/Grpc` (the same
 * media type to connect-node, which the bridge passes on), and both answers
 * must match byte for byte: status, every header but `date` in its order,
 * every trailer in its order, and the body. The bridge's counter proves
 * which path each took.
 */

const maxMessageBytes = 4096;
const echoPath = "/rivulet.testing.v1.CounterService/Echo";
const infoPath = "/rivulet.admin.v1.AdminService/Info";

/** Echo, plus texts that fail in the ways the cases below need. */
function echoService(): ServiceImpl<typeof CounterService> {
  return {
    // eslint-disable-next-line require-yield -- the stream is not used here; only Echo is.
    async *count() {
      throw new ConnectError("not used", Code.Unimplemented);
    },
    async echo(request, context) {
      if (request.text === "") throw new ConnectError("text is required", Code.InvalidArgument);
      if (request.text === "crash") throw new Error("ECONNREFUSED 10.1.2.3:5432 in /srv/secret/db.ts");
      if (request.text === "missing") throw new ConnectError("no such thing: ünïcödé ✓ 100%", Code.NotFound, { "x-hint": "look elsewhere" });
      if (request.text === "details") {
        throw new ConnectError("with details", Code.FailedPrecondition, undefined, [{ desc: EchoRequestSchema, value: { text: "the detail" } }]);
      }
      if (request.text === "wait") {
        await new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }));
        throw ConnectError.from(context.signal.reason);
      }
      context.responseHeader.set("x-echo", "header");
      context.responseTrailer.set("x-echo-trailer", "trailer");
      return { text: request.text };
    },
  };
}

interface Answer {
  readonly status: number;
  /** Name and value pairs in wire order, `date` left out. */
  readonly headers: readonly (readonly [string, string])[];
  readonly trailers: readonly (readonly [string, string])[];
  readonly body: string;
}

const pairsOf = (head: http2.IncomingHttpHeaders): [string, string][] =>
  Object.entries(head)
    .filter(([name]) => !name.startsWith(":") && name !== "date")
    .map(([name, value]) => [name, String(value)]);

describe("the unary bridge answers gRPC unary calls as connect-node does", () => {
  let server: TestServer;
  let session: http2.ClientHttp2Session;
  let users = 0;
  beforeAll(async () => {
    server = await startTestServer({
      // Two calls per user, then the bucket is empty for a thousand seconds: each case below uses a fresh user.
      config: { maxMessageBytes, publishRate: 0.001, publishBurst: 2 },
      extraServices: () => [{ service: CounterService, impl: echoService() }],
    });
    session = http2.connect(server.url);
  });
  afterAll(async () => {
    session.close();
    await server.close();
  });

  const bridged = () => metricValue(server.url, 'rivulet_unary_bridge_calls_total{protocol="grpc"}');

  function send(path: string, headers: Record<string, string>, body: Uint8Array): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const stream = session.request({ ":method": "POST", ":path": path, te: "trailers", ...headers });
      const chunks: Buffer[] = [];
      let status = 0;
      let pairs: [string, string][] = [];
      let trailers: [string, string][] = [];
      stream.on("response", (head) => {
        status = Number(head[":status"]);
        pairs = pairsOf(head);
      });
      stream.on("trailers", (head) => {
        trailers = pairsOf(head);
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => resolve({ status, headers: pairs, trailers, body: Buffer.concat(chunks).toString("base64") }));
      stream.on("error", reject);
      stream.end(body);
    });
  }

  /** The same request through the bridge and through connect-node: both answers, after checking which path each took. */
  async function both(
    path: string,
    headers: Record<string, string>,
    body: Uint8Array,
    type = "application/grpc",
  ): Promise<{ bridge: Answer; reference: Answer }> {
    const before = await bridged();
    const bridge = await send(path, { ...headers, "content-type": type }, body);
    expect(await bridged(), "the bridge took the call").toBe(before + 1);
    const reference = await send(path, { ...headers, "content-type": "Application/Grpc" }, body);
    expect(await bridged(), "connect-node took the call").toBe(before + 1);
    return { bridge, reference };
  }

  async function bearer(roles: string[] = []): Promise<Record<string, string>> {
    return { authorization: `Bearer ${await server.token(`grpc-unary-user-${++users}`, roles)}` };
  }

  const echo = (text: string) => toBinary(EchoRequestSchema, create(EchoRequestSchema, { text }));
  const envelope = (bytes: Uint8Array, flags = 0) => encodeEnvelope(flags, bytes);
  /** The error a call failed with (the test fails if it succeeded). */
  const failure = (call: Promise<unknown>): Promise<ConnectError> =>
    call.then(
      () => {
        throw new Error("the call succeeded");
      },
      (error: unknown) => ConnectError.from(error),
    );
  const trailer = (answer: Answer, name: string) => answer.trailers.find(([key]) => key === name)?.[1];

  it("success: the message, the implementation's headers and trailers, grpc-status 0", async () => {
    const { bridge, reference } = await both(echoPath, await bearer(), envelope(echo("hello")));
    expect(bridge).toEqual(reference);
    expect(bridge.status).toBe(200);
    expect(bridge.headers).toEqual([
      ["content-type", "application/grpc+proto"],
      ["x-echo", "header"],
    ]);
    expect(bridge.trailers).toEqual([
      ["grpc-status", "0"],
      ["x-echo-trailer", "trailer"],
    ]);
    expect(Buffer.from(bridge.body, "base64")).toEqual(Buffer.from(envelope(echo("hello"))));
  });

  it("success with content-type application/grpc+proto", async () => {
    const { bridge, reference } = await both(echoPath, await bearer(), envelope(echo("hello")), "application/grpc+proto");
    expect(bridge).toEqual(reference);
    expect(trailer(bridge, "grpc-status")).toBe("0");
  });

  it.each([
    ["over 1 KiB: compressed", "x".repeat(2000), true],
    ["under 1 KiB: grpc-encoding sent, the message not compressed", "small", false],
  ])("grpc-accept-encoding: gzip, %s", async (_name, text, compressed) => {
    const { bridge, reference } = await both(echoPath, { ...(await bearer()), "grpc-accept-encoding": "gzip" }, envelope(echo(text)));
    expect(bridge).toEqual(reference);
    expect(bridge.headers).toContainEqual(["grpc-encoding", "gzip"]);
    expect(Buffer.from(bridge.body, "base64")[0]).toBe(compressed ? 1 : 0);
  });

  it("a gzip-compressed request (grpc-encoding: gzip) is read, and the answer compressed alike", async () => {
    const { bridge, reference } = await both(echoPath, { ...(await bearer()), "grpc-encoding": "gzip" }, envelope(gzipSync(echo("y".repeat(1500))), 1));
    expect(bridge).toEqual(reference);
    expect(trailer(bridge, "grpc-status")).toBe("0");
    expect(bridge.headers).toContainEqual(["grpc-encoding", "gzip"]);
  });

  it.each([
    ["an encoding the server does not have", { "grpc-encoding": "snappy" }, envelope(echo("hello"), 1), Code.Unimplemented],
    ["a compressed envelope without grpc-encoding", {}, envelope(gzipSync(echo("hello")), 1), Code.Internal],
    ["a corrupt gzip body", { "grpc-encoding": "gzip" }, envelope(Buffer.from("not gzip at all"), 1), Code.InvalidArgument],
    [
      "a gzip body over readMaxBytes once decompressed",
      { "grpc-encoding": "gzip" },
      envelope(gzipSync(echo("z".repeat(maxMessageBytes * 2))), 1),
      Code.ResourceExhausted,
    ],
  ])("compressed request: %s", async (_name, headers, body, code) => {
    const { bridge, reference } = await both(echoPath, { ...(await bearer()), ...headers }, body);
    expect(bridge).toEqual(reference);
    expect(trailer(bridge, "grpc-status")).toBe(String(code));
  });

  it.each([
    ["invalid_argument", "", Code.InvalidArgument, "text is required"],
    ["internal (a bug's error, hidden)", "crash", Code.Internal, "internal error"],
    ["not_found, with metadata and a message to percent-encode", "missing", Code.NotFound, "no such thing: ünïcödé ✓ 100%"],
    ["failed_precondition with details (grpc-status-details-bin)", "details", Code.FailedPrecondition, "with details"],
  ])("%s", async (_name, text, code, message) => {
    const { bridge, reference } = await both(echoPath, await bearer(), envelope(echo(text)));
    expect(bridge).toEqual(reference);
    expect(bridge.status).toBe(200);
    expect(bridge.body).toBe("");
    expect(trailer(bridge, "grpc-status")).toBe(String(code));
    expect(trailer(bridge, "grpc-message")).toBe(encodeURIComponent(message));
  });

  it("the error's metadata and details are in the trailers", async () => {
    const missing = await both(echoPath, await bearer(), envelope(echo("missing")));
    expect(trailer(missing.bridge, "x-hint")).toBe("look elsewhere");
    const details = await both(echoPath, await bearer(), envelope(echo("details")));
    expect(trailer(details.bridge, "grpc-status-details-bin")).toMatch(/^[A-Za-z0-9+/]+=*$/);
  });

  it("unauthenticated: no token", async () => {
    const { bridge, reference } = await both(echoPath, {}, envelope(echo("hello")));
    expect(bridge).toEqual(reference);
    expect(trailer(bridge, "grpc-status")).toBe(String(Code.Unauthenticated));
  });

  it("permission_denied: the server API without the admin role", async () => {
    const { bridge, reference } = await both(infoPath, await bearer(), envelope(new Uint8Array()));
    expect(bridge).toEqual(reference);
    expect(trailer(bridge, "grpc-status")).toBe(String(Code.PermissionDenied));
    expect(trailer(bridge, "grpc-message")).toBe(encodeURIComponent('the "admin" role is required'));
  });

  it("resource_exhausted from the rate limit, with retry-after in the trailers", async () => {
    const headers = await bearer();
    // Two calls empty the user's bucket (burst 2, both answered by the bridge).
    for (let i = 0; i < 2; i++)
      expect(trailer(await send(echoPath, { ...headers, "content-type": "application/grpc" }, envelope(echo("x"))), "grpc-status")).toBe("0");
    const { bridge, reference } = await both(echoPath, headers, envelope(echo("hello")));
    // The message says how many milliseconds are left, which moves between the two calls.
    const steady = (answer: Answer) => ({
      ...answer,
      trailers: answer.trailers.map(([name, value]) => [name, value.replace(/retry%20in%20\d+%20ms/, "retry in N ms")]),
    });
    expect(steady(bridge)).toEqual(steady(reference));
    expect(trailer(bridge, "grpc-status")).toBe(String(Code.ResourceExhausted));
    expect(trailer(bridge, "retry-after")).toBe("1000");
  });

  it("deadline_exceeded after grpc-timeout", async () => {
    const { bridge, reference } = await both(echoPath, { ...(await bearer()), "grpc-timeout": "20m" }, envelope(echo("wait")));
    expect(bridge).toEqual(reference);
    expect(trailer(bridge, "grpc-status")).toBe(String(Code.DeadlineExceeded));
  });

  it("invalid_argument: a malformed grpc-timeout", async () => {
    const { bridge, reference } = await both(echoPath, { ...(await bearer()), "grpc-timeout": "soon" }, envelope(echo("hello")));
    expect(bridge).toEqual(reference);
    expect(trailer(bridge, "grpc-message")).toBe(encodeURIComponent("protocol error: invalid grpc timeout value: soon"));
  });

  it("resource_exhausted: an envelope over readMaxBytes, refused on its prefix", async () => {
    const { bridge, reference } = await both(echoPath, await bearer(), envelope(echo("x".repeat(maxMessageBytes + 100))));
    expect(bridge).toEqual(reference);
    expect(trailer(bridge, "grpc-status")).toBe(String(Code.ResourceExhausted));
  });

  it.each([
    ["no message", new Uint8Array(), Code.Unimplemented],
    ["a cut prefix", new Uint8Array([0, 0, 0]), Code.InvalidArgument],
    ["a message shorter than its prefix says", envelope(echo("hello")).subarray(0, 8), Code.InvalidArgument],
    ["two messages", Buffer.concat([envelope(echo("one")), envelope(echo("two"))]), Code.Unimplemented],
    ["bytes that are not the request message", envelope(new Uint8Array([0xff, 0xff, 0xff])), Code.Internal],
  ])("a bad envelope: %s", async (_name, body, code) => {
    const { bridge, reference } = await both(echoPath, await bearer(), body);
    expect(bridge).toEqual(reference);
    expect(trailer(bridge, "grpc-status")).toBe(String(code));
  });

  it("gRPC over HTTP/1.1, gRPC-Web and gRPC+JSON go on to connect-node", async () => {
    const before = await bridged();
    const headers = await bearer();
    const json = await send(echoPath, { ...headers, "content-type": "application/grpc+json" }, envelope(Buffer.from(JSON.stringify({ text: "hi" }))));
    expect(trailer(json, "grpc-status")).toBe("0");
    const web = await send(echoPath, { ...headers, "content-type": "application/grpc-web+proto" }, envelope(echo("hi")));
    expect(web.status).toBe(200);
    const h1 = await fetch(`${server.url}${echoPath}`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/grpc" },
      body: envelope(echo("hi")),
    });
    await h1.arrayBuffer();
    expect(await bridged()).toBe(before);
  });

  describe("a real client: the generated client with connect-node's gRPC transport", () => {
    it("success, errors with metadata and details and request compression through the bridge; a deadline", async () => {
      const before = await bridged();
      const client = createClient(CounterService, createGrpcTransport({ baseUrl: server.url }));
      const gzip = createClient(CounterService, createGrpcTransport({ baseUrl: server.url, sendCompression: compressionGzip, compressMinBytes: 0 }));
      const options = { headers: await bearer() };
      expect((await client.echo({ text: "hello" }, options)).text).toBe("hello");
      expect((await gzip.echo({ text: "compressed" }, { headers: await bearer() })).text).toBe("compressed");

      const missing = await failure(client.echo({ text: "missing" }, { headers: await bearer() }));
      expect([missing.code, missing.rawMessage, missing.metadata.get("x-hint")]).toEqual([Code.NotFound, "no such thing: ünïcödé ✓ 100%", "look elsewhere"]);
      const details = await failure(client.echo({ text: "details" }, { headers: await bearer() }));
      expect(details.findDetails(EchoRequestSchema).map((detail) => detail.text)).toEqual(["the detail"]);
      expect(await bridged()).toBe(before + 4);
      // The client gives up at its deadline too: which side ends the call first is a race, the code is the same.
      const late = await failure(client.echo({ text: "wait" }, { headers: await bearer(), timeoutMs: 20 }));
      expect(late.code).toBe(Code.DeadlineExceeded);
    });

    it("ChatService.Send, as a back end publishes", async () => {
      const before = await bridged();
      const chat = createClient(ChatService, createGrpcTransport({ baseUrl: server.url }));
      const { message } = await chat.send({ room: "grpc-unary", text: "hi" }, { headers: await bearer() });
      expect([message?.text, message?.room]).toEqual(["hi", "grpc-unary"]);
      expect(await bridged()).toBe(before + 1);
    });
  });
});
