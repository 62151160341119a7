import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescMethodStreaming,
  type DescMethodUnary,
  type Message,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type StreamResponse, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { callLifetime } from "./call-lifetime.js";
import { onlyRequest, streamResponse } from "./server-stream.js";
import { bearerToken, canRefreshToken, currentToken, type TokenSource } from "./token-source.js";
import { createOutboxRunner, type OutboxEntry, type OutboxOutcome, type OutboxRunner, type OutboxStore } from "./outbox.js";
import { ensureIdempotencyKey, hasIdempotencyKey, idempotencyKeyOf, isResumable, isResumePoint, resumeRequest } from "./websocket-resume.js";
import { backoffDelay, backoffOptions } from "../wire/backoff.js";
import { isTransient } from "../wire/transient-codes.js";
import { createWebSocketSession, type SessionCall, type SessionState, type SessionStateDetail, type WebSocketConstructor } from "./websocket-session.js";

export { createMemoryOutbox, type NewOutboxEntry, type OutboxEntry, type OutboxStore } from "./outbox.js";
export { createIndexedDbOutbox, type IndexedDbOutboxOptions } from "./indexeddb-outbox.js";
export type {
  SessionState as WebSocketTransportState,
  SessionStateDetail as WebSocketTransportStateDetail,
  WebSocketConstructor,
  WebSocketLike,
} from "./websocket-session.js";

/** Options of createWebSocketTransport(). */
export interface WebSocketTransportOptions {
  /**
   * The server's `ws://…/ws` (or `wss://`) URL, or a function returning it at
   * each (re)connect. Browsers cannot set headers on a WebSocket handshake:
   * put a token in `access_token` here, or rely on an `access_token` cookie;
   * per-call `headers` (such as `authorization`) travel in each call frame.
   */
  readonly url: string | (() => string | Promise<string>);
  /**
   * A bearer token for every call, sent as the call frame's `authorization`
   * header (it takes precedence over a call's own): no URL carries it, and a
   * fresh one needs no new socket. A function is asked before each call, and
   * again, with `{ refused: <the token> }`, when the server refused the token
   * it gave: a resumable stream ended `unauthenticated` (its token expired;
   * the stream then resumes from its cursor), or a unary call or queued write
   * answered `unauthenticated` (sent once more with the new token, unless the
   * function returned the refused one again). A function that throws ends the
   * call with its error.
   */
  readonly token?: TokenSource;
  /** The WebSocket constructor; defaults to `globalThis.WebSocket` (browsers, Node). Pass one where the runtime has none, or `ws`'s for its TLS options. */
  readonly WebSocket?: WebSocketConstructor;
  /** Upper bound of the first reconnect delay; it doubles per failed attempt up to `backoffMaxMs`. Default 500 ms. */
  readonly backoffInitialMs?: number;
  /** Default 30 s. */
  readonly backoffMaxMs?: number;
  /** Interval of `ping` frames while calls are open; a server silent for a whole interval after one is dead. Default 15 s. */
  readonly pingIntervalMs?: number;
  /**
   * Called when the connection's state changes (to show "reconnecting in
   * 3 s…"), and at each new `waiting`. `detail` says, for `waiting`, when the
   * next attempt starts (`retryAt`, ms since the epoch; `retryInMs`, the delay
   * chosen) and why the socket is down (`error`, a ConnectError); see
   * `WebSocketTransport.stateDetail`. A `(state) => void` fits.
   */
  readonly onStateChange?: (state: SessionState, detail: SessionStateDetail) => void;
  /**
   * Called when `WebSocketTransport.queuedWrites` changes, with the new
   * number (to show "offline, 3 writes queued").
   */
  readonly onQueueChange?: (queuedWrites: number) => void;
  /**
   * Opt-in: where writes made while the socket is not open wait, in order,
   * until the server answered them (docs/semantics.md, "Idempotent writes").
   * `createIndexedDbOutbox(name)` in browsers keeps them across reloads: a
   * transport created later with the same name replays them once connected;
   * `createMemoryOutbox()` keeps them for the process's life. Without it,
   * writes made offline are held in memory and sent together on reconnect,
   * as before. Which writes: see `outboxMethods`.
   */
  readonly outbox?: OutboxStore;
  /**
   * Which unary methods go through the outbox. Default: those whose request
   * has an `idempotency_key` (ChatService.Send, NotificationService.Publish,
   * the admin writes), given a fresh key when empty, so a replay after a
   * reload cannot post twice. Methods without a key (ProgressService.Report)
   * can be added here; a replay of one that reached the server before the
   * page went away then takes effect twice. Signals are better left out: a
   * typing indicator replayed minutes later is wrong.
   */
  readonly outboxMethods?: (method: DescMethodUnary) => boolean;
  /**
   * A queued write failed with an error retrying will not change, and nobody
   * in this page waits for it (it was queued by an earlier page); or the
   * store failed (`entry` undefined). The entry is already deleted.
   */
  readonly onOutboxError?: (error: ConnectError, entry: OutboxEntry | undefined) => void;
}

/** A connect-es Transport over one multiplexed WebSocket, plus its lifetime. */
export interface WebSocketTransport extends Transport {
  readonly state: SessionState;
  /** What goes with `state`: for `waiting`, `retryAt`, `retryInMs` and `error` (see `onStateChange`); `{}` otherwise. */
  readonly stateDetail: SessionStateDetail;
  /**
   * Writes that wait to be sent or answered: entries in the `outbox` store
   * (including those an earlier page left there, counted once the store was
   * first listed, and the entry on the wire until its answer), plus unary
   * calls held in memory until the socket opens (made while it was down, or
   * interrupted by a drop and safe to send again). `onQueueChange` tells
   * each change.
   */
  readonly queuedWrites: number;
  /** Closes the socket; open calls end with `canceled`. */
  close(): void;
}

/**
 * A connect-es `Transport` over Rivulet's WebSocket (GET /ws, docs/protocol.md),
 * so `createClient(ChatService, createWebSocketTransport({ url }))` makes typed
 * unary and server-streaming calls over one socket, in browsers and Node.
 *
 * While the socket is down it reconnects with exponential backoff and full
 * jitter. Resumable streams continue from the cursor of their last response,
 * so a subscriber receives every message exactly once, in order. Unary calls
 * made while offline are queued and sent on reconnect; a unary call that was
 * on the wire when the socket dropped is sent again only when that is safe:
 * its request carries an `idempotency_key` (filled in here when empty) or the
 * method is declared free of side effects; otherwise it fails `unavailable`.
 * With an `outbox`, writes made while offline are stored there instead (in
 * IndexedDB, they outlive the page) and sent one at a time, in order, when
 * the socket opens.
 *
 * A resumable stream whose token expires (`unauthenticated`) resumes with a
 * fresh one when there is a way to get it: `token` as a function, else `url`
 * as a function for calls relying on the handshake's credentials (the socket
 * is then replaced). It ends with `unauthenticated` when the fresh token is
 * refused too: the call, sent again with it, ended so before any response and
 * within one ping interval (a server refuses within a round trip, while an
 * accepted token lasts its lifetime, however quiet the stream).
 */
export function createWebSocketTransport(options: WebSocketTransportOptions): WebSocketTransport {
  const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WebSocketImpl) throw new Error("no WebSocket implementation: pass options.WebSocket (e.g. the ws package's WebSocket)");
  // Reconnects and retried streams space their attempts alike.
  const backoff = backoffOptions({ initialMs: options.backoffInitialMs, maxMs: options.backoffMaxMs }, 500);
  const pingIntervalMs = options.pingIntervalMs ?? 15_000;
  const session = createWebSocketSession({
    url: options.url,
    WebSocket: WebSocketImpl,
    backoff,
    pingIntervalMs,
    onStateChange: options.onStateChange,
  });
  const queues = options.outboxMethods ?? ((method: DescMethodUnary) => hasIdempotencyKey(method.input));
  const outbox: OutboxRunner | undefined = options.outbox
    ? createOutboxRunner({ store: options.outbox, send: sendEntry, backoff, onError: options.onOutboxError, onCountChange: queueChanged })
    : undefined;
  /** Unary calls held by the session until a socket opens. */
  let heldCalls = 0;
  let lastQueued = 0;
  function queuedWrites(): number {
    return heldCalls + (outbox?.count ?? 0);
  }
  function queueChanged(): void {
    const count = queuedWrites();
    if (count === lastQueued) return;
    lastQueued = count;
    options.onQueueChange?.(count);
  }
  function hold(delta: number): void {
    heldCalls += delta;
    queueChanged();
  }

  return {
    get state() {
      return session.state;
    },
    get stateDetail() {
      return session.detail;
    },
    get queuedWrites() {
      return queuedWrites();
    },
    close() {
      outbox?.close();
      session.close();
    },

    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
    ): Promise<UnaryResponse<I, O>> {
      const request = create(method.input, input);
      // Offline, or behind writes still queued: the outbox keeps them in order.
      if (outbox && queues(method) && (session.state !== "open" || outbox.busy)) {
        return queued(outbox, method, request, signal, timeoutMs, headerRecord(header));
      }
      // Safe to send twice: a key the server deduplicates, or a method declared idempotent in the schema.
      const replayable = ensureIdempotencyKey(method.input, request) || method.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN;
      const bytes = toBinary(method.input, request);
      let headers = headerRecord(header);
      return new Promise<UnaryResponse<I, O>>((resolve, reject) => {
        let response: MessageShape<O> | undefined;
        let stopped = false;
        /** Whether the session holds the call unsent (counted in `queuedWrites`). */
        let held = false;
        let refusedOnce = false;
        let sentNow = false;
        const release = () => {
          if (held) hold(-1);
          held = false;
        };
        const lifetime = callLifetime(signal, timeoutMs, (reason) => {
          stopped = true;
          release();
          session.cancel(call);
          reject(reason);
        });
        const call: SessionCall = {
          request: () => {
            sentNow = true;
            release();
            return { method: fullName(method), request: bytes, headers };
          },
          message(payload) {
            response = fromBinary(method.output, payload) as MessageShape<O>;
          },
          end(error) {
            release();
            // The server refused the token option's token: the call did not run; once, with a token asked for knowing that.
            const refused = error?.code === Code.Unauthenticated && !refusedOnce ? bearerToken(headers.authorization) : undefined;
            if (refused !== undefined && canRefreshToken(options.token) && !stopped) {
              refusedOnce = true;
              return void withToken(headers, refused).then(
                (withAuthorization) => {
                  if (bearerToken(withAuthorization.authorization) === refused) return call.end(error);
                  headers = withAuthorization;
                  send();
                },
                (failure: unknown) => call.end(ConnectError.from(failure)),
              );
            }
            lifetime.release();
            if (error) reject(error);
            else if (response === undefined) reject(new ConnectError("the call ended without a response", Code.Internal));
            else resolve({ stream: false, service: method.parent, method, header: new Headers(), trailer: new Headers(), message: response });
          },
          interrupted(sent) {
            const again = !sent || replayable;
            if (again && !held) {
              held = true;
              hold(1);
            }
            return again;
          },
        };
        const send = () => {
          if (stopped) return;
          sentNow = false;
          session.start(call);
          // Not sent at once: the socket is not open, and the session holds the call until it is.
          if (!sentNow && !held && session.state !== "closed") {
            held = true;
            hold(1);
          }
        };
        if (lifetime.abortedBefore) return reject(lifetime.abortedBefore);
        withToken(headers).then(
          (withAuthorization) => {
            headers = withAuthorization;
            send();
          },
          (error: unknown) => call.end(ConnectError.from(error)),
        );
      });
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
    ): Promise<StreamResponse<I, O>> {
      if (method.methodKind !== "server_streaming") {
        throw new ConnectError(`${fullName(method)}: only unary and server-streaming methods are served over the WebSocket`, Code.Unimplemented);
      }
      const first = create(method.input, await onlyRequest(input));
      const responses = openStream(method, first, signal, timeoutMs, headerRecord(header));
      return streamResponse(method, responses as AsyncIterable<MessageShape<O>>);
    },
  };

  /** A write through the outbox: stored with its key, answered once the drain reached it. */
  async function queued<I extends DescMessage, O extends DescMessage>(
    runner: OutboxRunner,
    method: DescMethodUnary<I, O>,
    request: MessageShape<I>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    headers: Record<string, string>,
  ): Promise<UnaryResponse<I, O>> {
    ensureIdempotencyKey(method.input, request);
    const deadline = timeoutMs !== undefined && timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
    const signals = [signal, deadline].filter((s): s is AbortSignal => s !== undefined);
    const outcome = await runner.enqueue(
      {
        method: fullName(method),
        request: toBinary(method.input, request),
        headers,
        idempotencyKey: idempotencyKeyOf(method.input, request),
        queuedAt: Date.now(),
      },
      signals.length > 0 ? AbortSignal.any(signals) : undefined,
    );
    if (!outcome.ok) throw outcome.error;
    const message = fromBinary(method.output, outcome.response) as MessageShape<O>;
    return { stream: false, service: method.parent, method, header: new Headers(), trailer: new Headers(), message };
  }

  /**
   * Sends an outbox entry and resolves with the server's answer. The session
   * holds the call through reconnects and sends it again after a drop (the
   * entry was queued knowing it may be replayed), so only an answer, or the
   * transport's close, resolves it. A token function is asked again once when
   * the server refuses the token: the entry may have waited offline past its
   * token's expiry, and that is no reason to drop it.
   */
  async function sendEntry(entry: OutboxEntry): Promise<OutboxOutcome> {
    const { outcome, token } = await sendEntryOnce(entry, undefined);
    if (outcome.ok || outcome.error.code !== Code.Unauthenticated || !canRefreshToken(options.token) || token === undefined) return outcome;
    return (await sendEntryOnce(entry, { token, outcome })).outcome;
  }

  /**
   * Sends the entry with a token asked for now; after a refusal, the function
   * is told which token was refused, and the refusal stands when it gives the
   * same one again. The token sent comes back with the outcome.
   */
  function sendEntryOnce(
    entry: OutboxEntry,
    refused: { readonly token: string; readonly outcome: OutboxOutcome } | undefined,
  ): Promise<{ outcome: OutboxOutcome; token?: string }> {
    return new Promise<{ outcome: OutboxOutcome; token?: string }>((done) => {
      let token: string | undefined;
      const resolve = (outcome: OutboxOutcome) => done({ outcome, token });
      let response: Uint8Array | undefined;
      let headers: Record<string, string> = { ...entry.headers };
      const call: SessionCall = {
        request: () => ({ method: entry.method, request: entry.request, headers }),
        message(payload) {
          response = payload;
        },
        end(error) {
          if (error) resolve({ ok: false, error });
          else if (response === undefined) resolve({ ok: false, error: new ConnectError("the call ended without a response", Code.Internal) });
          else resolve({ ok: true, response });
        },
        interrupted: () => true,
      };
      withToken(headers, refused?.token).then(
        (withAuthorization) => {
          token = bearerToken(withAuthorization.authorization);
          if (refused !== undefined && token === refused.token) return resolve(refused.outcome);
          headers = withAuthorization;
          session.start(call);
        },
        // No token now (offline, say) is no answer from the server: retried like one that is unavailable.
        (error: unknown) => resolve({ ok: false, error: new ConnectError(`could not get a token: ${ConnectError.from(error).rawMessage}`, Code.Unavailable) }),
      );
    });
  }

  /** The call's headers with the token option's `authorization`, asking a token function anew. */
  async function withToken(headers: Record<string, string>, refused?: string): Promise<Record<string, string>> {
    if (options.token === undefined) return headers;
    return { ...headers, authorization: `Bearer ${await currentToken(options.token, refused)}` };
  }

  /** A server-streaming call as an async iterable that survives reconnects when the method is resumable. */
  function openStream(
    method: DescMethod,
    request: Message,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    callHeaders: Record<string, string>,
  ): AsyncIterable<Message> {
    const resumable = isResumable(method);
    let headers = callHeaders;
    // A fresh token has a way to reach the server: the token function, or a new handshake for calls using the socket's.
    const renewal = canRefreshToken(options.token)
      ? "token"
      : typeof options.url === "function" && options.token === undefined && !("authorization" in headers)
        ? "handshake"
        : undefined;
    /** When the call was last sent, and whether with credentials asked for just before (cleared by a response). */
    let sentAt = 0;
    let freshCredentials = false;
    // Set by a renewal (start() with a token just asked for, or a new handshake) and consumed by the next
    // request(): the session also resends on a plain reconnect, with the headers of the last start(), and
    // such a resend's credentials are not fresh (the token may have expired while the socket was down).
    let renewedForNextSend = false;
    /** The token function was told of a refusal since the last response: a fresh token refused again ends the stream. */
    let toldOfRefusal = false;
    const queue: Message[] = [];
    /** The last response with a position (see `isResumePoint`): a reconnect resumes after it. */
    let last: Message | undefined;
    let done = false;
    let retries = 0;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let failure: ConnectError | undefined;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const settle = (error: ConnectError | undefined) => {
      if (done) return;
      done = true;
      failure = error;
      clearTimeout(retryTimer);
      lifetime.release();
      notify();
    };
    const lifetime = callLifetime(signal, timeoutMs, (reason) => {
      session.cancel(call);
      settle(reason);
    });
    const call: SessionCall = {
      request: () => {
        sentAt = performance.now();
        freshCredentials = renewedForNextSend;
        renewedForNextSend = false;
        return { method: fullName(method), request: toBinary(method.input, resumeRequest(method.input, method.output, request, last)), headers };
      },
      message(payload) {
        const response = fromBinary(method.output, payload);
        retries = 0;
        freshCredentials = false;
        toldOfRefusal = false;
        if (isResumePoint(method.output, response)) last = response;
        queue.push(response);
        notify();
      },
      end(error) {
        // A transient failure: the server asks a lossless subscriber that fell behind to resume
        // (resource_exhausted), or says it is going away (unavailable). A resumable stream continues
        // from its last cursor. An `end` carries no `retry-after`, so every resource_exhausted counts
        // as a limit that lifts (one on open calls or streams lifts as others end). Retried with the
        // same backoff as reconnects, so a server that keeps failing is not hammered.
        if (resumable && error && isTransient(error.code, { limitLifts: true }) && !done) {
          retryTimer = setTimeout(
            () => {
              retryTimer = undefined;
              if (!done) session.start(call);
            },
            backoffDelay(retries++, backoff),
          );
          return;
        }
        // A token refused as soon as it was sent is asked for again once, the function told of the refusal.
        if (resumable && error?.code === Code.Unauthenticated && renewal && !done && (!refusedFresh() || (renewal === "token" && !toldOfRefusal))) {
          // Synchronously, so the socket replaced is the one whose handshake expired, once for all its calls.
          if (renewal === "handshake") {
            renewedForNextSend = true;
            return session.restartOnNewSocket(call);
          }
          const refused = bearerToken(headers.authorization);
          toldOfRefusal = true;
          retryTimer = setTimeout(
            () => {
              retryTimer = undefined;
              void start(refused, error);
            },
            backoffDelay(retries++, backoff),
          );
          return;
        }
        settle(error);
      },
      interrupted: () => resumable,
    };
    /** The server refused credentials asked for just before sending: it answers a refusal within a round trip. */
    const refusedFresh = () => freshCredentials && performance.now() - sentAt < pingIntervalMs;
    /** (Re)starts the call, with a token asked for now when the transport has a token option. */
    const start = (refused?: string, refusal?: ConnectError) =>
      withToken(headers, refused).then(
        (withAuthorization) => {
          // Told which token was refused and given it again: the refusal stands.
          if (refused !== undefined && bearerToken(withAuthorization.authorization) === refused) return settle(refusal);
          headers = withAuthorization;
          renewedForNextSend = renewal === "token";
          if (!done) session.start(call);
        },
        (error: unknown) => settle(ConnectError.from(error)),
      );
    if (lifetime.abortedBefore) settle(lifetime.abortedBefore);
    else void start();

    return {
      [Symbol.asyncIterator]() {
        return {
          async next(): Promise<IteratorResult<Message>> {
            for (;;) {
              const response = queue.shift();
              if (response !== undefined) return { value: response, done: false };
              if (done) {
                if (failure) throw failure;
                return { value: undefined, done: true };
              }
              await new Promise<void>((resolve) => (wake = resolve));
            }
          },
          return(): Promise<IteratorResult<Message>> {
            // The consumer stopped reading: cancel on the server and release everything.
            if (!done) {
              session.cancel(call);
              settle(undefined);
            }
            queue.length = 0;
            return Promise.resolve({ value: undefined, done: true });
          },
        };
      },
    };
  }
}

function fullName(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

/** Call headers as the frame's map, keys lower case (the Headers class lower-cases them). */
function headerRecord(header: HeadersInit | undefined): Record<string, string> {
  const record: Record<string, string> = {};
  new Headers(header).forEach((value, name) => (record[name] = value));
  return record;
}
