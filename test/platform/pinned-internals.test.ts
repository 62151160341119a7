// connect-es's protocol helpers that Rivulet imports from its `/protocol*`
// subpaths, each with literal inputs and outputs. Those subpaths are meant for
// protocol implementations and may change in a minor release; package.json
// pins @connectrpc/* exactly for that reason (docs/development.md, "Pinned
// versions"). When an upgrade changes one of them, this file fails and names
// the helper: read its diff before changing the pin.
// `createTransport` from protocol-grpc (test/helpers/clients.ts) is not here:
// every gRPC test over HTTP/1.1 runs through it.
import { create, isMessage } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createHandlerContext,
  createMethodImplSpec,
  type Interceptor,
  type MethodImplSpec,
} from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import {
  compressedFlag,
  compressionNegotiate,
  createAsyncIterable,
  encodeEnvelope,
  invokeUnaryImplementation,
  mergeNonProtocolHeaders,
  transformInvokeImplementation,
} from "@connectrpc/connect/protocol";
import {
  codeFromHttpStatus,
  codeFromString,
  codeToHttpStatus,
  codeToString,
  endStreamFlag,
  endStreamToJson,
  errorFromJson,
  errorToJsonBytes,
  parseTimeout as parseConnectTimeout,
} from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { describe, expect, it } from "vitest";
import {
  CounterService,
  CountRequestSchema,
  CountResponseSchema,
  EchoRequestSchema,
  EchoResponseSchema,
  type CountRequest,
  type EchoRequest,
} from "../../gen/rivulet/testing/v1/counter_pb.js";

/** A timeout parse as plain data, so a changed result shows in the diff. */
function timeoutOf(result: { timeoutMs?: number; error?: ConnectError }): unknown {
  return { timeoutMs: result.timeoutMs, code: result.error?.code, message: result.error?.rawMessage };
}

describe("pinned connect-es internals behave as Rivulet relies on", () => {
  it("protocol: encodeEnvelope and compressedFlag frame a message (flags byte, 4-byte big-endian length)", () => {
    expect(compressedFlag, "compressedFlag").toBe(0b01);
    expect([...encodeEnvelope(0, new Uint8Array([1, 2, 3]))], "encodeEnvelope").toEqual([0, 0, 0, 0, 3, 1, 2, 3]);
    expect([...encodeEnvelope(compressedFlag, new Uint8Array(300))].slice(0, 5), "encodeEnvelope").toEqual([1, 0, 0, 1, 44]);
  });

  it("protocol-connect: endStreamFlag and endStreamToJson write the end-of-stream message", () => {
    expect(endStreamFlag, "endStreamFlag").toBe(0b10);
    expect(endStreamToJson(new Headers(), undefined, undefined), "endStreamToJson").toEqual({});
    const error = new ConnectError("boom ü", Code.ResourceExhausted, { "x-b": "2" });
    expect(JSON.parse(JSON.stringify(endStreamToJson(new Headers({ "x-a": "1" }), error, undefined))), "endStreamToJson").toEqual({
      error: { code: "resource_exhausted", message: "boom ü" },
      metadata: { "x-a": ["1"], "x-b": ["2"] },
    });
  });

  it("protocol-connect: parseTimeout reads connect-timeout-ms and enforces the maximum", () => {
    const cases: [string | null, unknown][] = [
      [null, { timeoutMs: undefined, code: undefined, message: undefined }],
      ["1500", { timeoutMs: 1500, code: undefined, message: undefined }],
      ["abc", { timeoutMs: undefined, code: Code.InvalidArgument, message: "protocol error: invalid connect timeout value: abc" }],
      ["99999999999", { timeoutMs: undefined, code: Code.InvalidArgument, message: "protocol error: invalid connect timeout value: 99999999999" }],
      ["70000", { timeoutMs: 70000, code: Code.InvalidArgument, message: "timeout 70000ms must be <= 60000" }],
    ];
    for (const [header, expected] of cases) expect(timeoutOf(parseConnectTimeout(header, 60_000)), `parseTimeout (connect) of ${header}`).toEqual(expected);
  });

  it("protocol-grpc: parseTimeout reads grpc-timeout units and enforces the maximum", () => {
    const cases: [string | null, unknown][] = [
      [null, { timeoutMs: undefined, code: undefined, message: undefined }],
      ["2S", { timeoutMs: 2000, code: undefined, message: undefined }],
      ["100m", { timeoutMs: 100, code: undefined, message: undefined }],
      ["1M", { timeoutMs: 60000, code: undefined, message: undefined }],
      ["5u", { timeoutMs: 0.005, code: undefined, message: undefined }],
      ["bogus", { timeoutMs: undefined, code: Code.InvalidArgument, message: "protocol error: invalid grpc timeout value: bogus" }],
      ["61S", { timeoutMs: 61000, code: Code.InvalidArgument, message: "timeout 61000ms must be <= 60000" }],
    ];
    for (const [header, expected] of cases) expect(timeoutOf(parseGrpcTimeout(header, 60_000)), `parseTimeout (grpc) of ${header}`).toEqual(expected);
  });

  it("protocol-grpc: setTrailerStatus writes grpc-status, a percent-encoded grpc-message and the error's metadata", () => {
    expect([...setTrailerStatus(new Headers(), undefined)], "setTrailerStatus").toEqual([["grpc-status", "0"]]);
    const error = new ConnectError("boom ü%", Code.ResourceExhausted, { "x-b": "2" });
    expect([...setTrailerStatus(new Headers(), error)], "setTrailerStatus").toEqual([
      ["grpc-message", "boom%20%C3%BC%25"],
      ["grpc-status", "8"],
      ["x-b", "2"],
    ]);
  });

  it("protocol-grpc-web: trailerFlag and trailerSerialize write the trailer message's flag and its header lines", () => {
    expect(trailerFlag, "trailerFlag").toBe(0x80);
    const trailer = new Headers([
      ["grpc-status", "3"],
      ["grpc-message", "bad%20input"],
      ["x-a", "1"],
    ]);
    expect(Buffer.from(trailerSerialize(trailer)).toString(), "trailerSerialize").toBe("grpc-message: bad%20input\r\ngrpc-status: 3\r\nx-a: 1\r\n");
  });

  it("protocol-connect: codeToString, codeFromString, codeToHttpStatus and codeFromHttpStatus follow the Connect spec's tables", () => {
    expect(codeToString(Code.ResourceExhausted), "codeToString").toBe("resource_exhausted");
    expect(codeFromString("deadline_exceeded"), "codeFromString").toBe(Code.DeadlineExceeded);
    expect(codeFromString("nope"), "codeFromString").toBeUndefined();
    const toHttp = Object.fromEntries(
      [Code.Canceled, Code.InvalidArgument, Code.NotFound, Code.ResourceExhausted, Code.Unavailable, Code.Unauthenticated, Code.Internal].map((c) => [
        codeToString(c),
        codeToHttpStatus(c),
      ]),
    );
    expect(toHttp, "codeToHttpStatus").toEqual({
      canceled: 499,
      invalid_argument: 400,
      not_found: 404,
      resource_exhausted: 429,
      unavailable: 503,
      unauthenticated: 401,
      internal: 500,
    });
    const fromHttp = Object.fromEntries([400, 401, 403, 404, 429, 500, 503, 418].map((s) => [s, codeToString(codeFromHttpStatus(s))]));
    expect(fromHttp, "codeFromHttpStatus").toEqual({
      400: "internal",
      401: "unauthenticated",
      403: "permission_denied",
      404: "unimplemented",
      429: "unavailable",
      500: "unknown",
      503: "unavailable",
      418: "unknown",
    });
  });

  it("protocol-connect: errorFromJson reads the Connect error JSON (wire/error-json.ts)", () => {
    const error = errorFromJson({ code: "permission_denied", message: "not a member" }, undefined, new ConnectError("fallback", Code.Internal));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.rawMessage).toBe("not a member");
    expect(errorFromJson({ code: "unknown", message: "newer code" }, undefined, new ConnectError("fallback", Code.Internal)).code).toBe(Code.Unknown);
  });

  it("protocol: transformInvokeImplementation runs a server-streaming spec over createAsyncIterable's input", async () => {
    const method = CounterService.method.count;
    const seen: string[] = [];
    const spec = createMethodImplSpec(method, async function* (request: CountRequest) {
      for (let value = 1; value <= request.to; value++) yield create(CountResponseSchema, { value });
    }) as MethodImplSpec;
    const context = createHandlerContext({
      service: CounterService,
      method,
      protocolName: "test",
      requestMethod: "POST",
      url: "http://localhost/rivulet.testing.v1.CounterService/Count",
      requestHeader: new Headers(),
      contextValues: createContextValues(),
    });
    const interceptor: Interceptor = (next) => (req) => {
      seen.push(req.method.name);
      return next(req);
    };
    const responses = transformInvokeImplementation(spec, context, [interceptor])(createAsyncIterable([create(CountRequestSchema, { to: 3 })]));
    const values: number[] = [];
    for await (const response of responses) if (isMessage(response, CountResponseSchema)) values.push(response.value);
    expect(values, "transformInvokeImplementation").toEqual([1, 2, 3]);
    expect(seen, "transformInvokeImplementation runs interceptors").toEqual(["Count"]);
  });

  // The unary bridge (src/bridge/rpc/unary-bridge.ts) and the method registry's invokeUnary.
  it("protocol: compressionNegotiate picks the response encoding from accept-encoding, and refuses an unknown request encoding", () => {
    const available = [compressionGzip, compressionBrotli];
    const pick = (requested: string | null, accepted: string | null) => {
      const { request, response, error } = compressionNegotiate(available, requested, accepted, "Accept-Encoding");
      return { request: request?.name ?? null, response: response?.name ?? null, code: error?.code, message: error?.rawMessage };
    };
    expect(pick(null, "gzip, br"), "compressionNegotiate").toEqual({ request: null, response: "gzip", code: undefined, message: undefined });
    expect(pick(null, "br"), "compressionNegotiate").toEqual({ request: null, response: "br", code: undefined, message: undefined });
    expect(pick(null, "deflate"), "compressionNegotiate").toEqual({ request: null, response: null, code: undefined, message: undefined });
    expect(pick("zstd", null), "compressionNegotiate").toEqual({
      request: null,
      response: null,
      code: Code.Unimplemented,
      message: 'unknown compression "zstd": supported encodings are gzip,br',
    });
  });

  it("protocol: mergeNonProtocolHeaders copies an error's metadata except protocol headers", () => {
    const into = new Headers({ "x-a": "1" });
    mergeNonProtocolHeaders(into, new Headers({ "retry-after": "1", "content-type": "text/plain", "connect-timeout-ms": "5", "grpc-status": "0" }));
    expect([...into.entries()], "mergeNonProtocolHeaders").toEqual([
      ["retry-after", "1"],
      ["x-a", "1"],
    ]);
  });

  it("protocol-connect: errorToJsonBytes writes the Connect error JSON", () => {
    const text = new TextDecoder().decode(errorToJsonBytes(new ConnectError("too fast ü", Code.ResourceExhausted), {}));
    expect(text, "errorToJsonBytes").toBe('{"code":"resource_exhausted","message":"too fast ü"}');
  });

  it("protocol: invokeUnaryImplementation runs a unary spec through the interceptors", async () => {
    const method = CounterService.method.echo;
    const seen: string[] = [];
    const spec = createMethodImplSpec(method, (request: EchoRequest) => create(EchoResponseSchema, { text: request.text })) as Extract<
      MethodImplSpec,
      { kind: "unary" }
    >;
    const context = createHandlerContext({
      service: CounterService,
      method,
      protocolName: "test",
      requestMethod: "POST",
      url: "http://localhost/rivulet.testing.v1.CounterService/Echo",
      requestHeader: new Headers(),
      contextValues: createContextValues(),
    });
    const interceptor: Interceptor = (next) => (req) => {
      seen.push(req.method.name);
      return next(req);
    };
    const response = await invokeUnaryImplementation(spec, context, create(EchoRequestSchema, { text: "hi" }), [interceptor]);
    expect(isMessage(response, EchoResponseSchema) ? response.text : undefined, "invokeUnaryImplementation").toBe("hi");
    expect(seen, "invokeUnaryImplementation runs interceptors").toEqual(["Echo"]);
  });
});
