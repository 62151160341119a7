import { toBinary, type Message } from "@bufbuild/protobuf";
import type { OutgoingHttpHeaders } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { compressedFlag, compressionNegotiate, encodeEnvelope, mergeNonProtocolHeaders, type Compression } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes, parseTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { callEnded, type BridgeMethod, type CallContext } from "../../call/method-registry.js";
import type { HttpRequest, HttpResponse, Mount, MountContext } from "../../http/mount.js";
import { requestCompression } from "../../http/request-compression.js";
import { requestHeaders, singleHeader } from "../../http/request-headers.js";
import { settleUnreadBody } from "../../http/unread-body.js";
import { writeHead } from "../../http/write-head.js";
import { redactUrl } from "../../log.js";
import { parseInput } from "./parse-input.js";

/** connect-node's default: smaller responses are not worth compressing. */
const compressMinBytes = 1024;

/**
 * Connect unary calls in binary Protobuf (`POST`, `content-type:
 * application/proto`, no request compression), HTTP/1.1 and HTTP/2, gRPC
 * unary calls in binary Protobuf (`application/grpc[+proto]`, HTTP/2) and
 * gRPC-Web ones (`application/grpc-web[+proto]`, HTTP/1.1 and HTTP/2), gzip,
 * br or no request compression, answered straight on the Node response.
 *
 * Why by hand: a publish (`Send`, `Publish`, the server API) is one small
 * message each way, yet connect-node runs it through its universal request
 * and response (a URL, web `Headers` and their conversions, async iterables to
 * read the body and to write the answer, promise hops for each) and aborts the
 * finished call without a reason, which builds a DOMException. That was about
 * a third of a publish's CPU (bench/README.md, "Rooms latency"). Here the body
 * is read in one loop, the call goes through the same interceptors
 * (`BridgeMethod.invokeUnary`, connect-es's own invoke helper) and the answer
 * is one `writeHead` and one `end`.
 *
 * Everything else goes on to connect-node unchanged: JSON, GET, compressed
 * Connect requests, any other spelling of the content type, gRPC over
 * HTTP/1.1 and gRPC-Web's text variant. The answers are connect-node's, byte for byte: the
 * same status, headers (content-type, content-length, `trailer-` prefixed
 * trailers, the error's metadata; for gRPC, `grpc-encoding`, and the status
 * in trailers from connect-es's own `setTrailerStatus`, for gRPC-Web in a
 * trailer message from its own `trailerSerialize`), error JSON from
 * connect-es's own serializer and status table, timeouts parsed by its own
 * helpers, compression negotiated by its own helper from `accept-encoding`
 * (`grpc-encoding` and `grpc-accept-encoding`), and its handling of a body
 * left unread.
 */
export function createRpcUnaryBridge(context: MountContext): Mount {
  const { methods, config, metrics } = context;
  // The labelled children, looked up once: `inc({ protocol })` hashes the labels on every call.
  const calls = {
    connect: metrics.unaryBridgeCalls.labels({ protocol: "connect" }),
    grpc: metrics.unaryBridgeCalls.labels({ protocol: "grpc" }),
    "grpc-web": metrics.unaryBridgeCalls.labels({ protocol: "grpc-web" }),
  };

  async function serve(req: HttpRequest, res: HttpResponse, method: BridgeMethod, url: string): Promise<void> {
    const timeout = parseTimeout(singleHeader(req.headers["connect-timeout-ms"]), config.maxTimeoutMs);
    const { call, answer } = openCall(req, res, method, url, "connect", timeout.timeoutMs, "application/proto");
    const compression = compressionNegotiate(requestCompression, null, singleHeader(req.headers["accept-encoding"]), "Accept-Encoding");
    let status = 200;
    let body: Uint8Array;
    try {
      if (timeout.error) throw timeout.error;
      const input = parseInput(method, await readBody(req, config.maxMessageBytes, singleHeader(req.headers["content-length"])));
      body = toBinary(method.method.output, await method.invokeUnary(input, call));
    } catch (reason) {
      call.abort(reason);
      ({ status, body } = errorAnswer(call, reason));
    } finally {
      call.abort(callEnded);
    }
    if (compression.response && body.byteLength >= compressMinBytes) {
      body = await compression.response.compress(body);
      call.responseHeader.set("content-encoding", compression.response.name);
    }
    const headers = responseHeaders(call, body.byteLength);
    // Only a refused request (over the size limit) leaves part of its body unread.
    if (!req.complete) Object.assign(headers, await settleUnreadBody(req, res));
    if (!answer()) return;
    writeHead(res, status, headers);
    res.end(body);
  }

  /**
   * A gRPC or gRPC-Web unary call, as connect-es's handlers serve them: for
   * gRPC the status in HTTP trailers after the headers (and the message, if
   * any), never a trailers-only response; for gRPC-Web the same trailers as
   * a last, trailer-flagged message in the body (compressed as a message
   * is). The error's metadata goes in the trailers.
   */
  async function serveGrpc(req: HttpRequest, res: HttpResponse, method: BridgeMethod, url: string, protocol: "grpc" | "grpc-web"): Promise<void> {
    const timeout = parseGrpcTimeout(singleHeader(req.headers["grpc-timeout"]), config.maxTimeoutMs);
    const contentType = protocol === "grpc" ? "application/grpc+proto" : "application/grpc-web+proto";
    const { call, answer } = openCall(req, res, method, url, protocol, timeout.timeoutMs, contentType);
    call.responseTrailer.set("grpc-status", "0");
    const compression = compressionNegotiate(
      requestCompression,
      singleHeader(req.headers["grpc-encoding"]),
      singleHeader(req.headers["grpc-accept-encoding"]),
      "Grpc-Accept-Encoding",
    );
    if (compression.response) call.responseHeader.set("grpc-encoding", compression.response.name);
    const envelope = async (flags: number, data: Uint8Array) =>
      compression.response && data.byteLength >= compressMinBytes
        ? encodeEnvelope(flags | compressedFlag, await compression.response.compress(data))
        : encodeEnvelope(flags, data);
    let body: Uint8Array | undefined;
    try {
      // connect-es raises these when it first reads the request, in this order.
      if (compression.error) throw compression.error;
      if (timeout.error) throw timeout.error;
      const input = await readEnvelope(req, config.maxMessageBytes, compression.request, protocol === "grpc-web", (bytes) => parseInput(method, bytes));
      body = await envelope(0, toBinary(method.method.output, await method.invokeUnary(input, call)));
    } catch (reason) {
      call.abort(reason);
      const error = reason instanceof ConnectError ? reason : new ConnectError("internal error", Code.Internal, undefined, undefined, reason);
      setTrailerStatus(call.responseTrailer, error);
    } finally {
      call.abort(callEnded);
    }
    // gRPC-Web: the trailers as the body's last message.
    const webTrailer = protocol === "grpc-web" ? await envelope(trailerFlag, trailerSerialize(call.responseTrailer)) : undefined;
    const headers = nodeHeaders(call.responseHeader);
    // Only a refused request (over the size limit, a bad envelope) leaves part of its body unread.
    if (!req.complete) Object.assign(headers, await settleUnreadBody(req, res));
    if (!answer()) return;
    writeHead(res, 200, headers);
    if (webTrailer !== undefined) {
      res.end(body === undefined ? webTrailer : Buffer.concat([body, webTrailer]));
      return;
    }
    // Both response classes take trailers so; TypeScript cannot call the union of their overloads.
    (res as { addTrailers(trailers: OutgoingHttpHeaders): void }).addTrailers(nodeHeaders(call.responseTrailer));
    if (body === undefined) res.end();
    else res.end(body);
  }

  return {
    handle(req, res, url) {
      if (req.method !== "POST") return false;
      const protocol = protocolOf(req);
      if (protocol === undefined) return false;
      const method = methods.get(url.pathname.slice(1));
      if (method?.kind !== "unary") return false;
      // connect-node's URL for the call's context; without an authority it answers an error of its own.
      const authority = "authority" in req ? req.authority : req.headers.host;
      if (authority === undefined) return false;
      const scheme = "encrypted" in req.socket && req.socket.encrypted ? "https" : "http";
      calls[protocol].inc();
      const callUrl = new URL(req.url ?? "", `${scheme}://${authority}`).toString();
      (protocol === "connect" ? serve(req, res, method, callUrl) : serveGrpc(req, res, method, callUrl, protocol)).catch((error: unknown) => {
        context.logger.error({ err: error, url: redactUrl(req.url ?? "") }, "rpc unary handler failed");
        if ("stream" in res) res.stream.destroy();
        else res.destroy();
      });
      return true;
    },
  };
}

/**
 * A unary call's context on its response, as connect-es's handlers make it:
 * its signal aborts when the client goes away before the answer is written.
 * `answer()` is asked just before writing: false when the client is gone
 * (nothing to write), else the call counts as answered from then on.
 */
function openCall(
  req: HttpRequest,
  res: HttpResponse,
  method: BridgeMethod,
  url: string,
  protocolName: string,
  timeoutMs: number | undefined,
  contentType: string,
): { call: CallContext; answer(): boolean } {
  const controller = new AbortController();
  let answered = false;
  res.once("close", () => {
    if (!answered) controller.abort(new ConnectError("the client went away", Code.Canceled));
  });
  const call = method.createContext(
    { protocolName, requestMethod: "POST", url, requestHeader: requestHeaders(req), signal: controller.signal, timeoutMs },
    { "content-type": contentType },
  );
  return {
    call,
    answer() {
      if (controller.signal.aborted) return false;
      answered = true;
      return true;
    },
  };
}

/**
 * The calls taken here: Connect in binary Protobuf without request
 * compression (HTTP/1.1 and HTTP/2), gRPC in binary Protobuf on HTTP/2 and
 * gRPC-Web in binary Protobuf on both (request compression is read in
 * `serveGrpc`, as connect-node would).
 */
function protocolOf(req: HttpRequest): "connect" | "grpc" | "grpc-web" | undefined {
  const type = req.headers["content-type"];
  if (type === "application/proto") {
    const encoding = req.headers["content-encoding"];
    return encoding === undefined || encoding === "identity" ? "connect" : undefined;
  }
  if ((type === "application/grpc" || type === "application/grpc+proto") && req.httpVersionMajor === 2) return "grpc";
  if (type === "application/grpc-web" || type === "application/grpc-web+proto") return "grpc-web";
  return undefined;
}

/**
 * The error answer, as connect-es's Connect unary handler writes it: the
 * status from its table, `application/json`, the error's own metadata as
 * headers (not for an error relayed from another server), and the error JSON.
 * Anything not a ConnectError is a bug: `internal error`, nothing of it shown.
 */
function errorAnswer(call: CallContext, reason: unknown): { status: number; body: Uint8Array } {
  const error = reason instanceof ConnectError ? reason : new ConnectError("internal error", Code.Internal, undefined, undefined, reason);
  call.responseHeader.set("content-type", "application/json");
  if (!error.isWireError) mergeNonProtocolHeaders(call.responseHeader, error.metadata);
  return { status: codeToHttpStatus(error.code), body: errorToJsonBytes(error, {}) };
}

/**
 * The response headers as connect-node writes them: the call's headers,
 * its trailers prefixed `trailer-` (Connect unary, connectrpc.com/docs/protocol
 * "Unary-Response"), and the body's length, in the order `Headers` keeps.
 */
function responseHeaders(call: CallContext, length: number): OutgoingHttpHeaders {
  const header = call.responseHeader;
  call.responseTrailer.forEach((value, key) => header.append(`trailer-${key}`, value));
  header.set("content-length", String(length));
  return nodeHeaders(header);
}

/** `Headers` as Node's header object, as connect-node converts them (`webHeaderToNodeHeaders`): repeated names as arrays. */
function nodeHeaders(header: Headers): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  header.forEach((value, key) => {
    const existing = out[key];
    if (existing === undefined) out[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[key] = [existing, value];
  });
  return out;
}

/**
 * Reads the whole body, as connect-es's `readAllBytes` does: a valid
 * `content-length` over the limit is refused before reading, and the body
 * must then be exactly that long; without one, the limit applies as the bytes
 * come. The rest of a refused body is left unread (see settleUnreadBody).
 */
async function readBody(req: HttpRequest, maxBytes: number, contentLength: string | null): Promise<Uint8Array> {
  const hint = contentLength === null ? NaN : parseInt(contentLength, 10);
  const known = Number.isSafeInteger(hint) && hint >= 0;
  if (known && hint > maxBytes) throw new ConnectError(`message size ${hint} is larger than configured readMaxBytes ${maxBytes}`, Code.ResourceExhausted);
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      if (known && length + chunk.byteLength > hint) {
        throw new ConnectError(`protocol error: promised ${hint} bytes, received ${length + chunk.byteLength}`, Code.InvalidArgument);
      }
      length += chunk.byteLength;
      if (!known && length > maxBytes) throw new ConnectError(`message size is larger than configured readMaxBytes ${maxBytes}`, Code.ResourceExhausted);
      chunks.push(chunk);
    }
  } catch (error) {
    // A reset or a dropped connection mid-body is the client's doing, not a server bug.
    throw error instanceof ConnectError ? error : new ConnectError("the client went away while sending its request", Code.Canceled);
  }
  if (known && length < hint) throw new ConnectError(`protocol error: promised ${hint} bytes, received ${length}`, Code.InvalidArgument);
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
}

/**
 * Reads a gRPC request body as connect-es's gRPC handler does (its envelope
 * decoder, then `ensureSingle`): an envelope announcing more than `maxBytes`
 * is refused as soon as its prefix arrives, the rest left unread; the
 * first message is decompressed (`request`, from `grpc-encoding`, limited to
 * `maxBytes` decompressed) and parsed before the next envelope is looked at;
 * a second message (decompressed and parsed first, so its own faults come
 * first), bytes left over or no message at all are refused with its
 * codes and messages. Envelope flags other than compression are ignored,
 * as connect-es ignores them; for gRPC-Web (`web`), an envelope with the
 * trailer flag is decompressed and then skipped, as connect-es does.
 */
async function readEnvelope(
  req: HttpRequest,
  maxBytes: number,
  request: Compression | null,
  web: boolean,
  parse: (bytes: Uint8Array) => Message,
): Promise<Message> {
  let pending: Buffer | undefined;
  let message: Message | undefined;
  try {
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      pending = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
      // Every envelope whose prefix is in, as connect-es's decoder splits a chunk before the first is parsed.
      const envelopes: { flags: number; data: Uint8Array }[] = [];
      let offset = 0;
      while (pending.byteLength - offset >= 5) {
        const size = pending.readUInt32BE(offset + 1);
        if (size > maxBytes) throw new ConnectError(`message size ${size} is larger than configured readMaxBytes ${maxBytes}`, Code.ResourceExhausted);
        if (pending.byteLength - offset - 5 < size) break;
        envelopes.push({ flags: pending[offset]!, data: pending.subarray(offset + 5, offset + 5 + size) });
        offset += 5 + size;
      }
      pending = offset === pending.byteLength ? undefined : pending.subarray(offset);
      for (const { flags, data } of envelopes) {
        const bytes = (flags & compressedFlag) === 0 ? data : await decompress(request, data, maxBytes);
        if (web && (flags & trailerFlag) === trailerFlag) continue;
        // A second message is parsed before it is refused, as connect-es's pipeline does.
        const parsed = parse(bytes);
        if (message !== undefined) throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
        message = parsed;
      }
    }
  } catch (error) {
    // A reset or a dropped connection mid-body is the client's doing, not a server bug.
    throw error instanceof ConnectError ? error : new ConnectError("the client went away while sending its request", Code.Canceled);
  }
  if (pending !== undefined) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  if (message === undefined) throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
  return message;
}

function decompress(request: Compression | null, data: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  if (request === null) throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
  return request.decompress(data, maxBytes);
}
