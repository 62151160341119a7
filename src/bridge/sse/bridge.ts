import type { Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import { acceptsGzip } from "../../http/accept-encoding.js";
import { redactUrl } from "../../log.js";
import type { HttpRequest, HttpResponse, Mount, MountContext } from "../../http/mount.js";
import { publicError } from "../../call/public-error.js";
import type { ResponseSink } from "../../call/response-sink.js";
import { DetachableCall } from "../../call/detachable-call.js";
import type { BridgeMethod } from "../../call/method-registry.js";
import { errorJson } from "../../wire/error-json.js";
import { encodeEnd, encodeError, encodeRetry } from "./encoder.js";
import { createSseHeartbeat } from "./heartbeat.js";
import { messageEventOf } from "./message-event.js";
import { transientRetryMs } from "./transient-error.js";
import { parseSseRequest, ssePathPrefix, type SseRequest } from "./request.js";
import { createSseWriter, sendJsonError, type SseWriter } from "./writer.js";

/**
 * How long a response waits for its call's first event before opening: long
 * enough for authentication, validation and authorization (which fail at
 * once) to answer with an HTTP status, short enough that a quiet stream
 * shows as open at once.
 */
const holdMs = 100;
/**
 * zlib's settings for `--sse-compression on`: chosen for memory, which a
 * stream holds for its whole life. A 1 KiB window still spans the last few
 * events, whose field names and values repeat; a larger one compressed our
 * events no better and cost more per connection (docs/protocol.md "Compression").
 */
const gzip = { level: 6, windowBits: 10, memLevel: 2 } as const;

/** The response headers of a stream: two shared objects, not one per response. */
const streamHeaders = {
  "content-type": "text/event-stream; charset=utf-8",
  // A URL with a token must not be kept by any cache; no-transform keeps
  // proxies from compressing or buffering the stream.
  "cache-control": "no-cache, no-transform",
  // nginx: pass events through as they come.
  "x-accel-buffering": "no",
} as const;
const tokenInQueryHeaders = { ...streamHeaders, "cache-control": "no-store, no-transform" } as const;

/** What every response of one bridge shares: how a call's response ends, and the delivery counter. */
interface SseBridgeShared {
  readonly deliveries: { inc(): void };
  /** Ends the response after the call ended (`failure` undefined: it completed). */
  complete(call: SseCall, failure: unknown): void;
}

/**
 * One SSE response and its call, and the call's `ResponseSink`: a class,
 * because an idle subscriber keeps it for as long as its stream is open.
 * Once the stream detached (`detach`), nothing of the request stays (its
 * URL, headers and input, the handler's async frames): the stream ends the
 * response through `end`, and the response's close reaches the stream
 * through `cancel`.
 */
class SseCall extends DetachableCall implements ResponseSink {
  sent = 0;
  writer!: SseWriter;

  constructor(
    private readonly shared: SseBridgeShared,
    readonly method: BridgeMethod,
    readonly name: string,
    readonly resuming: boolean,
    readonly req: HttpRequest,
  ) {
    super();
  }

  send(response: Message): void {
    if (this.writer.state() === "closed") return;
    this.writer.message(messageEventOf(this.method, response));
    this.sent++;
    this.shared.deliveries.inc();
  }

  congested(): boolean {
    return this.writer.ready() !== undefined;
  }

  drained(): Promise<void> {
    return this.writer.ready() ?? Promise.resolve();
  }

  protected ended(error: unknown): void {
    this.shared.complete(this, error);
  }
}

/**
 * Serves every server-streaming method of the schema as Server-Sent Events at
 * `GET /sse/<package>.<Service>/<Method>` (docs/protocol.md "Server-Sent
 * Events"). Generic: routes, request decoding, cursors and slow-consumer
 * policies come from the descriptors and `BridgeMethod`; calls go through the
 * router's interceptors, so authentication and error codes match Connect's.
 *
 * Lifecycle of one response: held until the first event or `holdMs` (so
 * early refusals get an HTTP status; transient failures get a stream that
 * says `event: error`, see `transientRetryMs`), then `retry:`, one event per
 * message, keep-alive comments from one shared timer, and `event: end` or `event: error`. A
 * resumed stream that ends with nothing to send answers 204. On shutdown
 * every stream gets a short `retry:` and an `unavailable` error, then closes,
 * so clients reconnect to another instance.
 */
export function createSseBridge(context: MountContext): Mount {
  const { methods, config, logger, metrics, shutdownSignal } = context;
  const retryMs = config.sseRetryMs;
  // The labelled child, looked up once: `inc({ transport })` hashes the labels on every delivery.
  const deliveries = metrics.deliveries.labels({ transport: "sse" });
  const calls = new Set<SseCall>();
  const emptied: Array<() => void> = [];
  const heartbeat = createSseHeartbeat(config.keepaliveMs, (writer) => {
    // The client read nothing for two keep-alive intervals: a goodbye could not
    // reach it either, so drop it; it resumes from its last id when it wakes up.
    metrics.slowConsumersDropped.inc({ transport: "sse" });
    writer.destroy();
  });

  /** Tells a client to come back soon (somewhere else): a short, jittered `retry:` then `unavailable`. */
  const goodbye = (writer: SseWriter) => {
    const jitteredRetry = Math.floor(Math.random() * Math.min(retryMs, 1000));
    // The connection closes too: on HTTP/1.1 the client would otherwise come
    // back on this same connection and be told to go again, in a loop, until
    // the grace period ends (HTTP/2 has GOAWAY for this).
    writer.end(encodeRetry(jitteredRetry) + encodeError(new ConnectError("server is shutting down; reconnect", Code.Unavailable)), true);
  };

  shutdownSignal.addEventListener(
    "abort",
    () => {
      for (const call of calls) {
        goodbye(call.writer);
        call.cancel(shutdownSignal.reason);
      }
    },
    { once: true },
  );

  async function serve(req: HttpRequest, res: HttpResponse, url: URL): Promise<void> {
    const request = parseSseRequest(req, url, methods, config.maxMessageBytes);
    if (!("input" in request)) {
      sendJsonError(res, request.status, JSON.stringify(errorJson(request.error)), request.allow !== undefined ? { allow: request.allow } : {});
      return;
    }

    if (config.sseCompression) {
      // The body depends on Accept-Encoding, so caches must key on it (RFC 9110 §12.5.5); CORS may have set `Vary: Origin`.
      const vary = res.getHeader("vary");
      res.setHeader("vary", typeof vary === "string" ? `${vary}, Accept-Encoding` : "Accept-Encoding");
    }
    const call = new SseCall(shared, request.method, request.name, request.resuming, req);
    const writer = createSseWriter(res, {
      headers: request.tokenInQuery ? tokenInQueryHeaders : streamHeaders,
      retryMs,
      conflate: request.method.policy.slowConsumer === "conflate",
      holdMs,
      // Compressed per connection: the event bytes are still built once per message.
      gzip: config.sseCompression && acceptsGzip(req.headers["accept-encoding"]) ? { zlib: gzip } : undefined,
      onClose: () => closed(call),
    });
    call.writer = writer;
    calls.add(call);
    heartbeat.add(writer);
    metrics.connections.inc({ transport: "sse" });
    metrics.streams.inc({ transport: "sse" });
    if (shutdownSignal.aborted) {
      goodbye(writer);
      return;
    }
    // Redacting parses the query: only for a line that will be written.
    if (logger.isLevelEnabled("debug")) logger.debug({ method: request.name, url: redactUrl(req.url ?? "") }, "sse stream opened");
    const { completed, failure } = await pull(request, call);
    call.pulled(completed, failure);
  }

  /** The response closed: whatever its call is doing, it ends now. */
  function closed(call: SseCall): void {
    calls.delete(call);
    heartbeat.delete(call.writer);
    metrics.connections.dec({ transport: "sse" });
    metrics.streams.dec({ transport: "sse" });
    // Ends the call if it is still running (the client went away); a no-op otherwise.
    call.cancel(new ConnectError("the client went away", Code.Canceled));
    if (calls.size === 0) for (const resolve of emptied.splice(0)) resolve();
  }

  /** Ends the response once its call ended (`failure` undefined: it completed). */
  function complete(call: SseCall, failure: unknown): void {
    const { writer, sent, req } = call;
    // Gone (client closed, dropped as stalled, or told to reconnect on shutdown): nothing more to say.
    if (writer.state() === "closed") return;
    if (shutdownSignal.aborted) return goodbye(writer);
    if (failure === undefined) {
      if (sent === 0 && call.resuming && writer.state() === "pending") {
        // The stream had already finished at the client's cursor: 204 stops a
        // browser's EventSource from reconnecting (WHATWG HTML §9.2.3).
        return writer.noContent();
      }
      return writer.end(encodeEnd());
    }
    const { error, hidden } = publicError(failure);
    if (hidden !== undefined) {
      logger.error({ err: hidden, method: call.name, url: redactUrl(req.url ?? "") }, "sse call failed unexpectedly");
    }
    if (error.code === Code.ResourceExhausted) metrics.slowConsumersDropped.inc({ transport: "sse" });
    const transientRetry = transientRetryMs(error, retryMs);
    if (writer.state() === "pending" && transientRetry === undefined) {
      const headers: Record<string, string> = error.code === Code.Unauthenticated ? { "www-authenticate": "Bearer" } : {};
      // The Connect protocol's own status table, so SSE answers as a Connect unary call would.
      return writer.fail(codeToHttpStatus(error.code), JSON.stringify(errorJson(error)), headers);
    }
    // A transient failure before the first event opens the stream (200, `retry:`)
    // just to say `event: error` and end it: a browser's EventSource then
    // reconnects, where a 503 would have closed it for good (§9.2.3).
    const retry = transientRetry !== undefined && transientRetry !== retryMs ? encodeRetry(transientRetry) : "";
    writer.end(retry + encodeError(error));
  }
  const shared: SseBridgeShared = { deliveries, complete };

  /** Pulls the call's messages into the writer, at the pace the client reads; topic streams deliver through the call's sink instead. */
  async function pull(request: SseRequest, call: SseCall): Promise<{ completed: boolean; failure: unknown }> {
    const { writer } = call;
    const responses = request.method.invoke(request.input, {
      protocolName: "sse",
      requestMethod: "GET",
      url: redactUrl(call.req.url ?? ""),
      requestHeader: request.header,
      signal: call.signal,
      // Topic streams hand fanned-out responses straight to the writer; the loop below only sees the end.
      sink: call,
    });
    const iterator = responses[Symbol.asyncIterator]();
    let failure: unknown;
    let completed = false;
    try {
      while (true) {
        const ready = writer.ready();
        if (ready) await ready;
        if (writer.state() === "closed") break;
        const result = await iterator.next();
        if (result.done) {
          completed = true;
          break;
        }
        if (writer.state() === "closed") break;
        call.send(result.value);
      }
    } catch (reason) {
      failure = reason;
    }
    if (!completed && failure === undefined) {
      // Left while the call was suspended at a yield: let it run its finally blocks.
      void iterator.return?.().catch(() => undefined);
    }
    return { completed, failure };
  }

  return {
    handle(req, res, url) {
      if (!url.pathname.startsWith(ssePathPrefix)) return false;
      serve(req, res, url).catch((error: unknown) => {
        logger.error({ err: error, url: redactUrl(req.url ?? "") }, "sse handler failed");
        if (!res.headersSent) {
          const shown = publicError(error).error;
          sendJsonError(res, codeToHttpStatus(shown.code), JSON.stringify(errorJson(shown)));
        } else if ("stream" in res) {
          res.stream.destroy();
        } else {
          res.destroy();
        }
      });
      return true;
    },
    async shutdown() {
      // The abort listener above has already said goodbye; wait for the
      // responses to finish, but not past the grace period (a client that reads
      // nothing would hold its response open forever).
      if (calls.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          emptied.push(resolve);
          timer = setTimeout(resolve, config.shutdownGraceMs);
        });
        clearTimeout(timer);
      }
      for (const call of calls) call.writer.destroy();
      heartbeat.stop();
    },
  };
}
