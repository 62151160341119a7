import {
  create,
  fromJsonString,
  toJsonString,
  type DescMessage,
  type DescMethodServerStreaming,
  type Message,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { codeFromHttpStatus } from "@connectrpc/connect/protocol-connect";
import { GapSchema, type Gap } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { backoffDelay, backoffOptions, type BackoffOptions } from "../wire/backoff.js";
import { errorFromWireJson } from "../wire/error-json.js";
import { isTransient } from "../wire/transient-codes.js";
import { readSseEvents } from "../wire/read-sse-events.js";
import { canRefreshToken, currentToken, type TokenSource } from "./token-source.js";

/** Where and how an SSE client connects. Works in browsers and in Node (global `fetch`). */
export interface SseClientOptions {
  /** The server, e.g. "https://rivulet.example.com". */
  readonly baseUrl: string;
  /**
   * A bearer token, or a function asked for a fresh one before every
   * (re)connection. With a function, a stream the server ends because its
   * token expired (`unauthenticated` after the 200), or a connection refused
   * with 401, reconnects with a new token, asked for with
   * `{ refused: <the refused token> }`, and resumes after the last event id;
   * the subscription ends with `unauthenticated` when the server refuses the
   * new token too, or the function returns the refused token again. A fixed
   * string cannot be renewed: its expiry ends the subscription.
   */
  readonly token?: TokenSource;
  /** Browsers: "include" sends the `access_token` cookie to another origin. */
  readonly credentials?: RequestCredentials;
  /** Reconnection delays; the first ceiling defaults to the server's `retry:` (else 1 s), the cap to 30 s. */
  readonly backoff?: Partial<BackoffOptions>;
  /**
   * Reconnects when nothing, not even a keep-alive comment, arrived for this
   * long. Default 45 s: three of the server's default 15 s keep-alives.
   */
  readonly silenceTimeoutMs?: number;
  /** The fetch to use (tests, custom agents); the global one by default. */
  readonly fetch?: typeof globalThis.fetch;
}

/** Options of one subscription. */
export interface SseSubscribeOptions {
  /** Stops the subscription: iteration then ends with `canceled`. */
  readonly signal?: AbortSignal;
  /** Resume after this event id (a cursor) instead of the request's own. */
  readonly lastEventId?: string;
  /** More request headers. */
  readonly headers?: HeadersInit;
  /** Called for a response that says the server could not replay everything (`rivulet.stream.v1.Gap`). */
  readonly onGap?: (gap: Gap) => void;
  /** Called before every reconnection, with the reason and the delay chosen. */
  readonly onReconnect?: (reason: ConnectError, delayMs: number) => void;
}

/** A client for Rivulet's Server-Sent Events bridge. */
export interface SseClient {
  /**
   * Subscribes to a server-streaming method over SSE and yields its typed
   * responses. Reconnects after drops (backoff with full jitter, up to the
   * cap) with the last event id, so a resumable stream continues exactly
   * after the last message received. Ends on `event: end` or a 204; throws
   * a ConnectError for codes that retrying cannot fix.
   */
  subscribe<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    request: MessageInitShape<I>,
    options?: SseSubscribeOptions,
  ): AsyncIterable<MessageShape<O>>;
}

/** The least first-reconnect ceiling taken from a server's `retry:`, in milliseconds. */
const minServerRetryMs = 100;

/** Creates an SSE client: see `SseClient.subscribe`. */
export function createSseClient(options: SseClientOptions): SseClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  const silenceTimeoutMs = options.silenceTimeoutMs ?? 45_000;
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => globalThis.fetch(input, init));

  return {
    async *subscribe<I extends DescMessage, O extends DescMessage>(
      method: DescMethodServerStreaming<I, O>,
      request: MessageInitShape<I>,
      subscribeOptions: SseSubscribeOptions = {},
    ): AsyncGenerator<MessageShape<O>> {
      const { signal } = subscribeOptions;
      const input = toJsonString(method.input, create(method.input, request));
      const url = `${baseUrl}/sse/${method.parent.typeName}/${method.name}?message=${encodeURIComponent(input)}`;
      let lastEventId = subscribeOptions.lastEventId ?? "";
      let serverRetryMs: number | undefined;
      let attempt = 0;
      /** The token of the last connection, and the refusal the next ask of the token function reports. */
      let sentToken: string | undefined;
      let refused: { readonly token: string; readonly error: ConnectError } | undefined;
      let askedAfterRefusal = false;
      while (true) {
        if (signal?.aborted) throw abortError(signal);
        const connection = new AbortController();
        const cancel = () => connection.abort(signal?.reason);
        signal?.addEventListener("abort", cancel);
        let watchdog: ReturnType<typeof setTimeout> | undefined;
        const feed = () => {
          clearTimeout(watchdog);
          watchdog = setTimeout(
            () => connection.abort(new ConnectError(`no data or keep-alive from the server for ${silenceTimeoutMs} ms`, Code.Unavailable)),
            silenceTimeoutMs,
          );
        };
        let reason: ConnectError;
        let fatal: ConnectError | undefined;
        try {
          feed();
          const headers = new Headers(subscribeOptions.headers);
          headers.set("accept", "text/event-stream");
          if (lastEventId !== "") headers.set("last-event-id", lastEventId);
          if (options.token !== undefined) {
            const token = await currentToken(options.token, refused?.token);
            // Told which token was refused and given it again: asking the server once more cannot help.
            if (refused !== undefined && token === refused.token) {
              fatal = refused.error;
              throw fatal;
            }
            askedAfterRefusal = refused !== undefined;
            refused = undefined;
            sentToken = token;
            headers.set("authorization", `Bearer ${token}`);
          }
          const response = await doFetch(url, { headers, signal: connection.signal, credentials: options.credentials, cache: "no-store" });
          // 204: the stream had already finished at our position (docs/protocol.md).
          if (response.status === 204) return;
          if (response.status === 200 && !/^text\/event-stream\b/i.test(response.headers.get("content-type") ?? "")) {
            // A proxy's or another server's page: not worth reconnecting to.
            fatal = new ConnectError(`expected text/event-stream, got ${response.headers.get("content-type") ?? "no content type"}`, Code.Internal);
            throw fatal;
          }
          if (response.status !== 200 || !response.body) {
            const refusal = await httpError(response);
            // Refused before streaming: only a server that is unavailable is worth asking again, and a
            // refused token once, when the token function has not just been told of a refusal.
            if (refusal.code === Code.Unauthenticated && canRefreshToken(options.token) && sentToken !== undefined && !askedAfterRefusal) {
              refused = { token: sentToken, error: refusal };
            } else if (refusal.code !== Code.Unavailable) fatal = refusal;
            throw refusal;
          }
          for await (const event of readSseEvents(response.body, { onChunk: feed, onRetry: (ms) => (serverRetryMs = ms) })) {
            if (event.type === "end") return;
            if (event.type === "error") {
              const failure = errorFromWireJson(event.data, new ConnectError("malformed error event", Code.Unknown));
              // The server says `resource_exhausted` in an event (not a 429) only for a limit that
              // lifts: a subscriber that fell behind (resume), or a rate whose wait is in `retry:`
              // (its `retry-after` does not cross the event's JSON).
              const transient = isTransient(failure.code, { limitLifts: true });
              // `unauthenticated` after a 200 is an accepted token that expired: worth a
              // reconnection when a fresh one can be had (a refused one answers 401, fatal above).
              const renewable = failure.code === Code.Unauthenticated && canRefreshToken(options.token);
              if (!transient && !renewable) fatal = failure;
              if (renewable && sentToken !== undefined) refused = { token: sentToken, error: failure };
              throw failure;
            }
            if (event.type !== "message") continue;
            const message = decode(method.output, event.data);
            // An event without `id:` (a chat signal, which has no position) keeps the last id. The parser
            // starts each connection with "", so its id is taken only once one was sent: a signal first on
            // a new connection must not turn a reconnect into a fresh start (as a browser's EventSource keeps it).
            if (event.lastEventId !== "") lastEventId = event.lastEventId;
            attempt = 0;
            const gap = gapOf(method.output, message);
            if (gap) subscribeOptions.onGap?.(gap);
            // The watchdog times the server, not the caller: a slow consumer is not a silent server.
            clearTimeout(watchdog);
            yield message;
            feed();
          }
          reason = new ConnectError("the server closed the stream", Code.Unavailable);
        } catch (error) {
          if (signal?.aborted) throw abortError(signal);
          if (fatal) throw fatal;
          if (error instanceof ConnectError && error.code === Code.Internal) throw error;
          // Network failures, a silent server (the watchdog), retryable codes: reconnect.
          reason = connection.signal.aborted ? ConnectError.from(connection.signal.reason, Code.Unavailable) : ConnectError.from(error, Code.Unavailable);
        } finally {
          clearTimeout(watchdog);
          signal?.removeEventListener("abort", cancel);
          connection.abort();
        }
        // A server's `retry:` of 0 (allowed, and what a jittered goodbye can round to)
        // must not make every reconnect immediate: it gets a floor.
        const delayMs = backoffDelay(attempt++, backoffOptions(options.backoff, Math.max(serverRetryMs ?? 1000, minServerRetryMs)));
        subscribeOptions.onReconnect?.(reason, delayMs);
        await sleep(delayMs, signal);
      }
    },
  };
}

/** The ConnectError of a refused request: the JSON body's code when there is one, else the Connect mapping of the status. */
async function httpError(response: Response): Promise<ConnectError> {
  const text = await response.text().catch(() => "");
  // Without a Connect error body (a proxy's page), as the Connect protocol maps statuses (https://connectrpc.com/docs/protocol#http-to-error-code).
  return errorFromWireJson(text, new ConnectError(`HTTP ${response.status}`, codeFromHttpStatus(response.status)));
}

/** A message event's proto3 JSON; a server speaking another schema is not worth reconnecting to. */
function decode<O extends DescMessage>(schema: O, data: string): MessageShape<O> {
  try {
    return fromJsonString(schema, data, { ignoreUnknownFields: true });
  } catch (error) {
    throw new ConnectError(`malformed ${schema.typeName} event`, Code.Internal, undefined, undefined, error);
  }
}

/** The `rivulet.stream.v1.Gap` a response carries in one of its oneofs, if any: found by type, not by field name. */
function gapOf(schema: DescMessage, message: Message): Gap | undefined {
  for (const oneof of schema.oneofs) {
    const value = (message as unknown as Record<string, { case?: string; value?: unknown }>)[oneof.localName]?.value;
    if (typeof value === "object" && value !== null && (value as Message).$typeName === GapSchema.typeName) return value as Gap;
  }
  return undefined;
}

/** Why the caller stopped: `deadline_exceeded` for a timeout signal, else its reason as a ConnectError (`canceled` by default). */
function abortError(signal: AbortSignal | undefined): ConnectError {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error && reason.name === "TimeoutError") return new ConnectError("the call's deadline passed", Code.DeadlineExceeded);
  return ConnectError.from(reason, Code.Canceled);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
