import http2 from "node:http2";
import type { Message } from "@bufbuild/protobuf";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { compressedFlag } from "@connectrpc/connect/protocol";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import { requestHeaders, singleHeader } from "../../http/request-headers.js";
import { settleUnreadBody } from "../../http/unread-body.js";
import { redactUrl } from "../../log.js";
import type { EnvelopeEncoding } from "../encodings.js";
import { publicError } from "../../call/public-error.js";
import type { ResponseSink } from "../../call/response-sink.js";
import { DetachableCall } from "../../call/detachable-call.js";
import type { BridgeMethod } from "../../call/method-registry.js";
import type { HttpRequest, HttpResponse, Mount, MountContext } from "../../http/mount.js";
import { envelopeOf } from "./envelope.js";
import { parseInput } from "./parse-input.js";
import { createRpcStreamWriter, type Protocol, type RpcStreamWriter } from "./stream-writer.js";

/** What every call of the bridge shares: how a call's response ends, and the delivery counters. */
interface RpcStreamShared {
  readonly deliveries: Readonly<Record<Protocol, { inc(): void }>>;
  /** Ends the response after the call ended (`failure` undefined: it completed). */
  complete(call: RpcStreamCall, failure: unknown): void;
}

/**
 * One Connect or gRPC server stream and its call's `ResponseSink`: a class,
 * because an idle subscriber keeps it for as long as its stream is open.
 * Once the stream detached, nothing of the request stays but the response:
 * the stream ends the call through `end`, the response's close reaches the
 * stream through `cancel`.
 */
class RpcStreamCall extends DetachableCall implements ResponseSink {
  constructor(
    private readonly shared: RpcStreamShared,
    readonly method: BridgeMethod,
    readonly protocol: Protocol,
    readonly writer: RpcStreamWriter,
    readonly req: HttpRequest,
    readonly res: HttpResponse,
  ) {
    super();
  }

  send(response: Message): void {
    if (this.writer.closed) return;
    this.writer.write(envelopeOf(this.method.method.output, response, this.writer.encoding));
    this.shared.deliveries[this.protocol].inc();
  }

  congested(): boolean {
    return this.writer.congested();
  }

  drained(): Promise<void> {
    return this.writer.drained();
  }

  protected ended(error: unknown): void {
    this.shared.complete(this, error);
  }
}

/**
 * Server-streaming calls over the Connect protocol (`application/connect+proto`,
 * HTTP/1.1 and HTTP/2) and gRPC (`application/grpc[+proto]`, HTTP/2), written
 * straight to the response.
 *
 * Why by hand: connect-node runs every response of every stream through its
 * own pipeline of async iterables (serialize, envelope, join, write), per
 * subscriber; a message fanned out to N streams is serialized N times and
 * costs N chains of promise hops. Here a topic stream's responses arrive
 * through a `ResponseSink` (see response-sink.ts), each response is
 * enveloped once and the same bytes are queued on every stream, and the
 * queue of each stream is written once per event-loop turn.
 *
 * Only the common case is taken: binary Protobuf, no request compression,
 * no gRPC-Web. Responses are compressed as connect-node would (gzip or br,
 * when the client accepts one, messages of 1 KiB or more), once per message. Everything else (JSON, compressed requests, gRPC-Web, unary
 * and client-streaming methods) goes on to connect-node, which serves the
 * whole protocol. Both answer with the same codes and messages: the calls go
 * through the same interceptors, timeouts are parsed by connect-es's own
 * helpers, and end-of-stream errors are written by its own serializers.
 */
export function createRpcStreamBridge(context: MountContext): Mount {
  const { methods, config, logger, metrics, shutdownSignal } = context;
  // The labelled children, looked up once: `inc({ transport })` hashes the labels on every delivery.
  const deliveries = { connect: metrics.deliveries.labels({ transport: "connect" }), grpc: metrics.deliveries.labels({ transport: "grpc" }) };

  /** Calls in progress: shutdown ends them with its reason (`unavailable`), as connect-node's handlers do. */
  const active = new Set<RpcStreamCall>();
  shutdownSignal.addEventListener(
    "abort",
    () => {
      for (const call of active) call.cancel(shutdownSignal.reason);
    },
    { once: true },
  );

  /** The response closed (a shared listener: `this` is the response): whatever its call is doing, it ends now. */
  function responseClosed(this: HttpResponse): void {
    calls.get(this)?.cancel(new ConnectError("the client went away", Code.Canceled));
  }
  /** Open calls by response, for `responseClosed`. */
  const calls = new WeakMap<HttpResponse, RpcStreamCall>();

  async function serve(req: HttpRequest, res: HttpResponse, method: BridgeMethod, protocol: Protocol): Promise<void> {
    const writer = createRpcStreamWriter(res, protocol, acceptedEncoding(req, protocol));
    const call = new RpcStreamCall(shared, method, protocol, writer, req, res);
    if (shutdownSignal.aborted) call.cancel(shutdownSignal.reason);
    calls.set(res, call);
    res.once("close", responseClosed);
    active.add(call);
    metrics.streams.inc({ transport: protocol });
    let failure: unknown;
    let completed = false;
    try {
      completed = await pull(req, call);
    } catch (reason) {
      failure = reason;
    }
    call.pulled(completed, failure);
  }

  /** Ends the response once its call ended (`failure` undefined: it completed). */
  function complete(call: RpcStreamCall, failure: unknown): void {
    const { req, res, writer, method, protocol } = call;
    active.delete(call);
    calls.delete(res);
    metrics.streams.dec({ transport: protocol });
    let error: ConnectError | undefined;
    if (failure !== undefined) {
      const shown = publicError(failure);
      if (shown.hidden !== undefined) logger.error({ err: shown.hidden, method: method.method.name }, "rpc stream failed unexpectedly");
      error = shown.error;
    }
    // Only a refused request (over the size limit, a bad timeout) leaves part of its body unread.
    if (req.complete) return writer.end(error);
    settleUnreadBody(req, res).then(
      (headers) => writer.end(error, headers),
      () => writer.end(error),
    );
  }
  const shared: RpcStreamShared = { deliveries, complete };

  /** Reads the request, starts the call and writes what it yields; true when its iterator finished (then detached, or done). */
  async function pull(req: HttpRequest, call: RpcStreamCall): Promise<boolean> {
    const { protocol, method, writer } = call;
    const timeoutHeader = protocol === "grpc" ? req.headers["grpc-timeout"] : req.headers["connect-timeout-ms"];
    const timeout = (protocol === "grpc" ? parseGrpcTimeout : parseConnectTimeout)(singleHeader(timeoutHeader), config.maxTimeoutMs);
    if (timeout.error) throw timeout.error;
    const input = parseInput(method, await readRequest(req, config.maxMessageBytes, method.method.methodKind));
    const responses = method.invoke(input, {
      protocolName: protocol,
      requestMethod: "POST",
      url: redactUrl(req.url ?? ""),
      requestHeader: requestHeaders(req),
      signal: call.signal,
      sink: call,
      timeoutMs: timeout.timeoutMs,
    });
    // Topic streams deliver through the sink and end this loop; other streams yield here.
    for await (const response of responses) {
      if (writer.closed) return false;
      if (writer.congested()) await writer.drained();
      call.send(response);
    }
    return true;
  }

  return {
    handle(req, res, url) {
      if (req.method !== "POST") return false;
      const method = methods.get(url.pathname.slice(1));
      if (method?.kind !== "server_streaming") return false;
      const protocol = protocolOf(req);
      if (protocol === undefined) return false;
      serve(req, res, method, protocol).catch((error: unknown) => {
        logger.error({ err: error, url: redactUrl(req.url ?? "") }, "rpc stream handler failed");
        destroy(res);
      });
      return true;
    },
  };
}

/**
 * The response encoding: the first of the client's accepted encodings that
 * the server has (gzip, br), as connect-node negotiates it; identity when
 * none. Compressed once per message and shared, like the plain envelope.
 */
function acceptedEncoding(req: HttpRequest, protocol: Protocol): EnvelopeEncoding {
  const header = singleHeader(req.headers[protocol === "grpc" ? "grpc-accept-encoding" : "connect-accept-encoding"]);
  for (const name of (header ?? "").split(",")) {
    const trimmed = name.trim();
    if (trimmed === "gzip" || trimmed === "br") return trimmed;
  }
  return "identity";
}

/** The calls taken here: binary Protobuf, identity request encoding, gRPC on HTTP/2 only. */
function protocolOf(req: HttpRequest): Protocol | undefined {
  const type = (req.headers["content-type"] ?? "").toLowerCase();
  if (type === "application/connect+proto") {
    const encoding = req.headers["connect-content-encoding"];
    return encoding === undefined || encoding === "identity" ? "connect" : undefined;
  }
  if ((type === "application/grpc" || type === "application/grpc+proto") && req.httpVersionMajor === 2) {
    const encoding = req.headers["grpc-encoding"];
    return encoding === undefined || encoding === "identity" ? "grpc" : undefined;
  }
  return undefined;
}

/**
 * Reads the request body: exactly one uncompressed envelope of at most
 * `maxBytes`, answered with connect-es's own codes and messages when not.
 */
async function readRequest(req: HttpRequest, maxBytes: number, methodKind: string): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    // Not destroyed when the loop stops early: the refusal is still to be written (settleUnreadBody).
    for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      length += chunk.length;
      if (length > maxBytes + 5) {
        throw new ConnectError(`message size is larger than configured readMaxBytes ${maxBytes}`, Code.ResourceExhausted);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    // A reset or a dropped connection mid-body is the client's doing, not a server bug.
    throw error instanceof ConnectError ? error : new ConnectError("the client went away while sending its request", Code.Canceled);
  }
  const body = Buffer.concat(chunks, length);
  if (body.length === 0) throw new ConnectError(`protocol error: missing input message for ${methodKind} method`, Code.Unimplemented);
  if (body.length < 5) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  const flags = body[0]!;
  const size = body.readUInt32BE(1);
  if (size > maxBytes) throw new ConnectError(`message size ${size} is larger than configured readMaxBytes ${maxBytes}`, Code.ResourceExhausted);
  if (body.length < 5 + size) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
  if (body.length > 5 + size) throw new ConnectError(`protocol error: received extra input message for ${methodKind} method`, Code.Unimplemented);
  if ((flags & compressedFlag) !== 0) throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
  if (flags !== 0) throw new ConnectError("protocol error: unexpected envelope flags", Code.InvalidArgument);
  return body.subarray(5);
}

function destroy(res: HttpResponse): void {
  if ("stream" in res) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  else res.destroy();
}
