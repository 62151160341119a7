import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CounterService, EchoRequestSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
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
 * gRPC unary calls in binary Protobuf over HTTP/2, and gRPC-Web ones over
 * HTTP/1.1 and HTTP/2, are answered by the unary bridge
 * (src/bridge/rpc/unary-bridge.ts); connect-node answers every other
 * request. Differential, as test/bridge/unary-bridge.test.ts for Connect:
 * each request is sent twice, once with `content-type: application/grpc`
 * (`application/grpc-web`; or the `+proto` spelling: what the bridge takes)
 * and once with `Application/Grpc` (`Application/Grpc-Web`: the same media
 * type to connect-node, which the bridge passes on), and both answers must
 * match byte for byte: status, every header but `date` in its order, every
 * HTTP trailer in its order, and the body (for gRPC-Web the trailers are its
 * last message). The bridge's counter proves which path each took.
 */

/** A protocol and HTTP version the bridge takes: the spellings it takes, and one it passes on. */
interface Variant {
  readonly protocol: "grpc" | "grpc-web";
  readonly version: "1.1" | "2";
  readonly types: readonly [string, string];
  readonly reference: string;
}

const variants: readonly Variant[] = [
  { protocol: "grpc", version: "2", types: ["application/grpc", "application/grpc+proto"], reference: "Application/Grpc" },
  { protocol: "grpc-web", version: "2", types: ["application/grpc-web", "application/grpc-web+proto"], reference: "Application/Grpc-Web" },
  { protocol: "grpc-web", version: "1.1", types: ["application/grpc-web+proto", "application/grpc-web"], reference: "Application/Grpc-Web+Proto" },
];

/** The body's envelopes: flags and bytes. */
function envelopesOf(body: Buffer): { flags: number; data: Buffer }[] {
  const out: { flags: number; data: Buffer }[] = [];
  for (let offset = 0; offset + 5 <= body.length;) {
    const size = body.readUInt32BE(offset + 1);
    out.push({ flags: body[offset]!, data: body.subarray(offset + 5, offset + 5 + size) });
    offset += 5 + size;
  }
  return out;
}

describe.each(variants)(
  "the unary bridge answers $protocol unary calls over HTTP/$version as connect-node does",
  ({ protocol, version, types, reference: referenceType }) => {
    let server: TestServer;
    let session: http2.ClientHttp2Session;
    let users = 0;
    beforeAll(async () => {
      ({ server, session } = await startUnaryBridgeServer());
    });
    afterAll(() => stopUnaryBridgeServer(server, session));

    const bridged = () => metricValue(server.url, `rivulet_unary_bridge_calls_total{protocol="${protocol}"}`);
    const send = (path: string, headers: Record<string, string>, body: Uint8Array) =>
      version === "2" ? postHttp2(session, path, headers, body) : postHttp1(server.url, path, headers, body);

    /** The same request through the bridge and through connect-node: both answers, after checking which path each took. */
    async function both(
      path: string,
      headers: Record<string, string>,
      body: Uint8Array,
      type: string = types[0],
    ): Promise<{ bridge: Answer; reference: Answer }> {
      const before = await bridged();
      const bridge = await send(path, { ...headers, "content-type": type }, body);
      expect(await bridged(), "the bridge took the call").toBe(before + 1);
      const reference = await send(path, { ...headers, "content-type": referenceType }, body);
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
    /** The status trailers: HTTP trailers for gRPC, the trailer message (uncompressed here) for gRPC-Web. */
    const trailersOf = (answer: Answer): (readonly [string, string])[] => {
      if (protocol === "grpc") return [...answer.trailers];
      const last = envelopesOf(Buffer.from(answer.body, "base64")).find(({ flags }) => flags === 0x80);
      return last === undefined ? [] : [...trailerParse(last.data)];
    };
    const trailer = (answer: Answer, name: string) => trailersOf(answer).find(([key]) => key === name)?.[1];
    /** The response message's envelope, base64; "" when there is none. */
    const messageOf = (answer: Answer) =>
      envelopesOf(Buffer.from(answer.body, "base64"))
        .filter(({ flags }) => (flags & 0x80) === 0)
        .map(({ flags, data }) => Buffer.from(encodeEnvelope(flags, data)).toString("base64"))
        .join();
    const contentType = protocol === "grpc" ? "application/grpc+proto" : "application/grpc-web+proto";

    it("success: the message, the implementation's headers and trailers, grpc-status 0", async () => {
      const { bridge, reference } = await both(echoPath, await bearer(), envelope(echo("hello")));
      expect(bridge).toEqual(reference);
      expect(bridge.status).toBe(200);
      expect(bridge.headers.filter(([name]) => name.startsWith("content-") || name.startsWith("x-"))).toEqual([
        ["content-type", contentType],
        ["x-echo", "header"],
      ]);
      expect(trailersOf(bridge)).toEqual([
        ["grpc-status", "0"],
        ["x-echo-trailer", "trailer"],
      ]);
      expect(messageOf(bridge)).toEqual(Buffer.from(envelope(echo("hello"))).toString("base64"));
    });

    it(`success with content-type ${types[1]}`, async () => {
      const { bridge, reference } = await both(echoPath, await bearer(), envelope(echo("hello")), types[1]);
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

    it("grpc-accept-encoding: gzip, an error whose trailers are over 1 KiB (gRPC-Web compresses its trailer message)", async () => {
      const { bridge, reference } = await both(echoPath, { ...(await bearer()), "grpc-accept-encoding": "gzip" }, envelope(echo(`fail:${"e".repeat(2000)}`)));
      expect(bridge).toEqual(reference);
      if (protocol === "grpc-web") expect(Buffer.from(bridge.body, "base64")[0]).toBe(0x81);
      else expect(trailer(bridge, "grpc-status")).toBe(String(Code.InvalidArgument));
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
      expect(messageOf(bridge)).toBe("");
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
      for (let i = 0; i < 2; i++) expect(trailer(await send(echoPath, { ...headers, "content-type": types[0] }, envelope(echo("x"))), "grpc-status")).toBe("0");
      const { bridge, reference } = await both(echoPath, headers, envelope(echo("hello")));
      // The message says how many milliseconds are left, which moves between the two calls.
      const steady = (answer: Answer) => ({
        ...answer,
        body: messageOf(answer),
        trailers: trailersOf(answer).map(([name, value]) => [name, value.replace(/retry%20in%20\d+%20ms/, "retry in N ms")]),
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

    it("a trailer-flagged envelope after the message: to gRPC a second message, parsed (and failing) before it is refused; skipped by gRPC-Web", async () => {
      const { bridge, reference } = await both(echoPath, await bearer(), Buffer.concat([envelope(echo("hello")), envelope(Buffer.from("x: y\r\n"), 0x80)]));
      expect(bridge).toEqual(reference);
      expect(trailer(bridge, "grpc-status")).toBe(protocol === "grpc" ? String(Code.Internal) : "0");
    });

    it("JSON, gRPC-Web's text variant and gRPC over HTTP/1.1 go on to connect-node", async () => {
      const before = await bridged();
      const headers = await bearer();
      const json = await send(
        echoPath,
        { ...headers, "content-type": `${protocol === "grpc" ? "application/grpc" : "application/grpc-web"}+json` },
        envelope(Buffer.from(JSON.stringify({ text: "hi" }))),
      );
      expect(trailer(json, "grpc-status")).toBe("0");
      if (protocol === "grpc-web") {
        const text = await send(
          echoPath,
          { ...headers, "content-type": "application/grpc-web-text" },
          Buffer.from(Buffer.from(envelope(echo("hi"))).toString("base64")),
        );
        // connect-node does not serve the text variant either.
        expect(text.status).toBe(415);
      } else {
        const h1 = await fetch(`${server.url}${echoPath}`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/grpc" },
          body: envelope(echo("hi")),
        });
        await h1.arrayBuffer();
      }
      expect(await bridged()).toBe(before);
    });

    describe(`a real client: the generated client with connect-node's ${protocol} transport`, () => {
      const transport = (options: { sendCompression?: typeof compressionGzip; compressMinBytes?: number } = {}) =>
        protocol === "grpc"
          ? createGrpcTransport({ baseUrl: server.url, ...options })
          : createGrpcWebTransport({ baseUrl: server.url, httpVersion: version, ...options });
      it("success, errors with metadata and details and request compression through the bridge; a deadline", async () => {
        const before = await bridged();
        const client = createClient(CounterService, transport());
        const gzip = createClient(CounterService, transport({ sendCompression: compressionGzip, compressMinBytes: 0 }));
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
        const chat = createClient(ChatService, transport());
        const { message } = await chat.send({ room: "grpc-unary", text: "hi" }, { headers: await bearer() });
        expect([message?.text, message?.room]).toEqual(["hi", "grpc-unary"]);
        expect(await bridged()).toBe(before + 1);
      });
    });
  },
);
