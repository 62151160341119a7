import { toBinary } from "@bufbuild/protobuf";
import type { OutgoingHttpHeaders } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { compressionNegotiate, mergeNonProtocolHeaders } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes, parseTimeout } from "@connectrpc/connect/protocol-connect";
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
 * application/proto`, no request compression), HTTP/1.1 and HTTP/2, answered
 * straight on the Node response.
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
 * requests, any other spelling of the content type, gRPC and gRPC-Web. The
 * answers are connect-node's, byte for byte: the same status, headers
 * (content-type, content-length, `trailer-` prefixed trailers, the error's
 * metadata), error JSON from connect-es's own serializer and status table,
 * timeouts parsed by its own helper, response compression negotiated by its
 * own helper from `accept-encoding`, and its handling of a body left unread.
 */
export function createRpcUnaryBridge(context: MountContext): Mount {
  const { methods, config, metrics } = context;
  const calls = metrics.unaryBridgeCalls;

  async function serve(req: HttpRequest, res: HttpResponse, method: BridgeMethod, url: string): Promise<void> {
    const requestController = new AbortController();
    let answered = false;
    res.once("close", () => {
      if (!answered) requestController.abort(new ConnectError("the client went away", Code.Canceled));
    });
    const timeout = parseTimeout(singleHeader(req.headers["connect-timeout-ms"]), config.maxTimeoutMs);
    const call = method.createContext(
      {
        protocolName: "connect",
        requestMethod: "POST",
        url,
        requestHeader: requestHeaders(req),
        signal: requestController.signal,
        timeoutMs: timeout.timeoutMs,
      },
      { "content-type": "application/proto" },
    );
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
    if (requestController.signal.aborted) return;
    answered = true;
    writeHead(res, status, headers);
    res.end(body);
  }

  return {
    handle(req, res, url) {
      if (req.method !== "POST" || req.headers["content-type"] !== "application/proto") return false;
      const encoding = req.headers["content-encoding"];
      if (encoding !== undefined && encoding !== "identity") return false;
      const method = methods.get(url.pathname.slice(1));
      if (method?.kind !== "unary") return false;
      // connect-node's URL for the call's context; without an authority it answers an error of its own.
      const authority = "authority" in req ? req.authority : req.headers.host;
      if (authority === undefined) return false;
      const scheme = "encrypted" in req.socket && req.socket.encrypted ? "https" : "http";
      calls.inc();
      serve(req, res, method, new URL(req.url ?? "", `${scheme}://${authority}`).toString()).catch((error: unknown) => {
        context.logger.error({ err: error, url: redactUrl(req.url ?? "") }, "rpc unary handler failed");
        if ("stream" in res) res.stream.destroy();
        else res.destroy();
      });
      return true;
    },
  };
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
