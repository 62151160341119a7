import { create, fromBinary, fromJsonString, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { codeFromString } from "@connectrpc/connect/protocol-connect";
import { EventSource } from "eventsource";
import WebSocket from "ws";
import { ClientFrameSchema, ServerFrameSchema } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import { ChatService, SubscribeRequestSchema, SubscribeResponseSchema, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import type { GapReason } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { bearer, clientFor, transportFor, type HttpVersion, type Protocol } from "../helpers/clients.js";

/** A room's event as any transport delivers it. */
export type RoomEvent =
  | { readonly kind: "message"; readonly cursor: string; readonly id: string; readonly text: string }
  | { readonly kind: "gap"; readonly cursor: string; readonly reason: GapReason };

export interface RoomRequest {
  readonly room: string;
  /** "" starts from `history` instead. */
  readonly cursor: string;
  readonly history: number;
}

/**
 * One way to stream a room from an instance: a transport and its client.
 * Each kind turns what its transport delivers into RoomEvents and ends with
 * the stream's error as a ConnectError.
 */
export interface SubscriberKind {
  readonly name: string;
  subscribe(baseUrl: string, request: RoomRequest, token: string, signal: AbortSignal): AsyncIterable<RoomEvent>;
}

/** A generated Connect client over one protocol; one transport (one HTTP/2 session) per instance. */
function generatedClientKind(name: string, protocol: Protocol, httpVersion: HttpVersion): SubscriberKind {
  const transports = new Map<string, Transport>();
  return {
    name,
    async *subscribe(baseUrl, request, token, signal) {
      let transport = transports.get(baseUrl);
      if (!transport) {
        transport = transportFor(baseUrl, protocol, httpVersion);
        transports.set(baseUrl, transport);
      }
      const chat = clientFor(ChatService, transport);
      for await (const response of chat.subscribe(request, { ...bearer(token), signal })) yield roomEventOf(response);
    },
  };
}

/**
 * Turns callbacks into a stream: `push` events, an error (which ends the
 * stream by throwing) or "end"; `drain` yields until one of the last two,
 * or until `signal` aborts (then `canceled`), and runs `release` however it ends.
 */
function callbackStream(signal: AbortSignal, release: () => void) {
  const queue: (RoomEvent | ConnectError | "end")[] = [];
  let wake: (() => void) | undefined;
  const push = (item: RoomEvent | ConnectError | "end") => {
    queue.push(item);
    wake?.();
  };
  async function* drain(): AsyncGenerator<RoomEvent> {
    const onAbort = () => push(new ConnectError("stopped", Code.Canceled));
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        if (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        const item = queue.shift()!;
        if (item === "end") return;
        if (item instanceof ConnectError) throw item;
        yield item;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      release();
    }
  }
  return { push, drain };
}

/**
 * The `eventsource` package on the SSE bridge, one connection per subscribe:
 * its own reconnection is cut short (a drop ends the stream with
 * `unavailable`) so that the RoomSubscriber picks the instance and resumes
 * with its cursor, as a load-balanced browser would land on another instance.
 */
function eventSourceKind(): SubscriberKind {
  return {
    name: "SSE (eventsource)",
    async *subscribe(baseUrl, request, token, signal) {
      const url = `${baseUrl}/sse/rivulet.chat.v1.ChatService/Subscribe?message=${encodeURIComponent(JSON.stringify(request))}`;
      const source = new EventSource(url, {
        fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${token}` } }),
      });
      const { push, drain } = callbackStream(signal, () => source.close());
      source.addEventListener("message", (event) => push(roomEventOf(fromJsonString(SubscribeResponseSchema, event.data))));
      source.addEventListener("error", (event) => {
        // `event: error` from the server carries Connect error JSON; a bare error is a dropped connection.
        const data = (event as MessageEvent<string | undefined>).data;
        if (typeof data === "string" && data !== "") {
          const body = JSON.parse(data) as { code: string; message?: string };
          push(new ConnectError(body.message ?? "", codeFromString(body.code) ?? Code.Unknown));
        } else {
          push(new ConnectError("SSE connection dropped", Code.Unavailable));
        }
        source.close();
      });
      yield* drain();
    },
  };
}

/**
 * The `ws` package speaking raw rivulet.bridge.v1 frames on `/ws`: one socket
 * and one call per subscribe. A socket that closes (instance killed) ends the
 * stream with `unavailable`, so the RoomSubscriber resumes elsewhere.
 */
function webSocketKind(): SubscriberKind {
  return {
    name: "WebSocket (ws, raw frames)",
    async *subscribe(baseUrl, request, token, signal) {
      const socket = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/ws`, ["rivulet.v1"], {
        headers: { authorization: `Bearer ${token}` },
        perMessageDeflate: false,
      });
      socket.binaryType = "nodebuffer";
      const { push, drain } = callbackStream(signal, () => socket.terminate());
      socket.on("open", () => {
        const payload = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, request));
        socket.send(
          toBinary(
            ClientFrameSchema,
            create(ClientFrameSchema, { kind: { case: "call", value: { id: 1, method: "rivulet.chat.v1.ChatService/Subscribe", request: payload } } }),
          ),
        );
      });
      socket.on("message", (data: Buffer) => {
        const frame = fromBinary(ServerFrameSchema, data);
        if (frame.kind.case === "message") push(roomEventOf(fromBinary(SubscribeResponseSchema, frame.kind.value.payload)));
        else if (frame.kind.case === "end") {
          const error = frame.kind.value.error;
          push(error ? new ConnectError(error.message, codeFromString(error.code) ?? Code.Unknown) : "end");
        }
      });
      socket.on("error", () => undefined);
      socket.on("close", (code) => push(new ConnectError(`socket closed (${code})`, Code.Unavailable)));
      yield* drain();
    },
  };
}

/** Maps a generated SubscribeResponse (any transport that yields one) to a RoomEvent. */
export function roomEventOf(response: SubscribeResponse): RoomEvent {
  const { cursor, event } = response;
  switch (event.case) {
    case "message":
      return { kind: "message", cursor, id: event.value.id, text: event.value.text };
    case "gap":
      return { kind: "gap", cursor, reason: event.value.reason };
    default:
      throw new Error(`unexpected event ${String(event.case)}`);
  }
}

/**
 * Every subscriber kind the multi-instance suites run: generated clients on
 * Connect, gRPC and gRPC-Web, the `eventsource` package on SSE, and `ws` on
 * the WebSocket bridge.
 */
export const subscriberKinds: readonly SubscriberKind[] = [
  generatedClientKind("Connect over h2c", "connect", "2"),
  generatedClientKind("gRPC over h2c", "grpc", "2"),
  generatedClientKind("gRPC-Web over HTTP/1.1", "grpc-web", "1.1"),
  eventSourceKind(),
  webSocketKind(),
];

/** Codes after which resuming cannot help: the subscriber gives up and reports it. */
const terminalCodes = new Set([Code.InvalidArgument, Code.Unauthenticated, Code.PermissionDenied, Code.NotFound, Code.Unimplemented]);

export interface RoomSubscriberOptions {
  readonly kind: SubscriberKind;
  readonly room: string;
  readonly token: string;
  /** Where the first connection starts: a cursor, else the last `history` messages (default 0). */
  readonly cursor?: string;
  readonly history?: number;
  /**
   * The instance to connect to, given the one the last connection went to
   * (undefined for the first); undefined gives up.
   */
  readonly pick: (previous: string | undefined) => string | undefined;
  /** Pause before reconnecting, so an outage is not a busy loop (the client's policy, not synchronisation). */
  readonly retryMs?: number;
}

/**
 * A client as a real one behaves: it streams a room, remembers the last
 * cursor it received, and when the stream fails (instance killed, Redis
 * unreachable, shutdown) reconnects through `pick` and resumes from that
 * cursor. Records every event, every connection and every error.
 */
export interface RoomSubscriber {
  readonly events: RoomEvent[];
  /** The base URL of each connection, in order. */
  readonly connections: string[];
  /** Why each connection ended, in order. */
  readonly errors: ConnectError[];
  /** Resolves once `condition` holds for the events; rejects when the subscriber gives up. */
  until(condition: (events: readonly RoomEvent[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Messages only, in order. */
  messages(): Extract<RoomEvent, { kind: "message" }>[];
  stop(): Promise<void>;
}

export function startRoomSubscriber(options: RoomSubscriberOptions): RoomSubscriber {
  const events: RoomEvent[] = [];
  const connections: string[] = [];
  const errors: ConnectError[] = [];
  const abort = new AbortController();
  const waiters = new Set<() => void>();
  let failure: Error | undefined;
  const notify = () => {
    for (const waiter of [...waiters]) waiter();
  };

  const done = (async () => {
    let cursor = options.cursor ?? "";
    let previous: string | undefined;
    while (!abort.signal.aborted) {
      const baseUrl = options.pick(previous);
      if (baseUrl === undefined) throw new Error(`${options.kind.name}: no instance left to connect to`);
      previous = baseUrl;
      connections.push(baseUrl);
      try {
        const request = { room: options.room, cursor, history: cursor === "" ? (options.history ?? 0) : 0 };
        for await (const event of options.kind.subscribe(baseUrl, request, options.token, abort.signal)) {
          events.push(event);
          cursor = event.cursor;
          notify();
        }
        throw new Error(`${options.kind.name}: a room stream ended without an error`);
      } catch (error) {
        if (abort.signal.aborted) return;
        const connectError = ConnectError.from(error);
        errors.push(connectError);
        notify();
        if (terminalCodes.has(connectError.code)) throw connectError;
        await new Promise((resolve) => setTimeout(resolve, options.retryMs ?? 50));
      }
    }
  })().catch((error: unknown) => {
    failure = error instanceof Error ? error : new Error(String(error));
    notify();
  });

  return {
    events,
    connections,
    errors,
    until(condition, what, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            finish(
              new Error(`${options.kind.name}: timed out waiting for ${what} (${events.length} events, errors: ${errors.map((e) => e.message).join("; ")})`),
            ),
          timeoutMs,
        );
        const check = () => {
          if (condition(events)) finish();
          else if (failure) finish(failure);
        };
        function finish(error?: Error) {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(error);
          else resolve();
        }
        waiters.add(check);
        check();
      });
    },
    messages: () => events.filter((event): event is Extract<RoomEvent, { kind: "message" }> => event.kind === "message"),
    async stop() {
      abort.abort();
      await done;
    },
  };
}
