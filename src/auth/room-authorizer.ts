import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { RoomAction as WireAction, RoomAuthorizer } from "../../gen/rivulet/authz/v1/authz_pb.js";
import type { Identity } from "./identity.js";
import type { RoomAction } from "./room-grants.js";

/** The longest an answer is reused, whatever ttl the backend gives (DESIGN.md, "Rooms a team can ship"). */
export const maxAnswerTtlMs = 10 * 60_000;

export interface RoomAuthorizerOptions {
  /** Base URL of the application's RoomAuthorizer (`--authorize-url`). */
  readonly url: string;
  /** How long one answer may take before the call is refused with unavailable. */
  readonly timeoutMs: number;
  /** Sent as `Authorization: Bearer <token>` so the backend knows Rivulet asks. */
  readonly token?: string;
  /** Answers remembered at most; the oldest is forgotten first. */
  readonly maxEntries?: number;
  /** Milliseconds since the Unix epoch (tests pass a fake clock). */
  readonly now?: () => number;
  /** Told about each failed ask (for the log); the caller gets `unavailable` either way. */
  readonly onFailure?: (error: ConnectError, question: { userId: string; room: string; action: RoomAction }) => void;
}

/** One answer of the backend: allowed or not, and until when it may be reused (ms since the Unix epoch). */
export interface RoomAnswer {
  readonly allowed: boolean;
  readonly until: number;
}

/** Asks the application's backend, through a cache, whether a user may read or write a room. */
export interface RoomAuthorizerClient {
  /** The answer; rejects with `unavailable` when the backend fails, answers non-OK or not in time. */
  ask(identity: Identity, room: string, action: RoomAction): Promise<RoomAnswer>;
}

/**
 * The client side of `rivulet.authz.v1.RoomAuthorizer` (Rivulet calls the
 * application). connect-node's Connect transport with JSON bodies, so a
 * backend needs no Protobuf: any HTTP server that answers the POST does.
 *
 * Answers are cached per user, room and action for their ttl, at most ten
 * minutes, and concurrent questions share one request: a thousand clients of
 * one room reconnecting after a restart ask the backend once per user, not
 * once per stream. Failures are not cached: the next call asks again.
 */
export function createRoomAuthorizer(options: RoomAuthorizerOptions): RoomAuthorizerClient {
  const now = options.now ?? (() => Date.now());
  const maxEntries = options.maxEntries ?? 100_000;
  const bearer: Interceptor = (next) => (request) => {
    request.header.set("authorization", `Bearer ${options.token}`);
    return next(request);
  };
  const client = createClient(
    RoomAuthorizer,
    createConnectTransport({
      baseUrl: options.url,
      httpVersion: "1.1",
      useBinaryFormat: false,
      interceptors: options.token === undefined ? [] : [bearer],
    }),
  );
  const answers = new Map<string, RoomAnswer>();
  const asking = new Map<string, Promise<RoomAnswer>>();

  async function askBackend(key: string, identity: Identity, room: string, action: RoomAction): Promise<RoomAnswer> {
    try {
      const response = await client.authorize(
        { userId: identity.userId, roles: [...identity.roles], room, action: action === "read" ? WireAction.READ : WireAction.WRITE },
        { timeoutMs: options.timeoutMs },
      );
      const answer = { allowed: response.allowed, until: now() + Math.min(response.ttlSeconds * 1000, maxAnswerTtlMs) };
      if (answer.until > now() && maxEntries > 0) {
        answers.delete(key);
        // Insertion order is age order: the first entry is the oldest.
        while (answers.size >= maxEntries) answers.delete(answers.keys().next().value!);
        answers.set(key, answer);
      }
      return answer;
    } catch (error) {
      const failure = ConnectError.from(error);
      options.onFailure?.(failure, { userId: identity.userId, room, action });
      // What went wrong is the operator's to read (logged); the caller learns only that it may retry.
      throw new ConnectError(`access to room "${room}" could not be decided: the application's authorizer did not answer; retry later`, Code.Unavailable);
    } finally {
      asking.delete(key);
    }
  }

  return {
    ask(identity, room, action) {
      const key = `${identity.userId}\n${room}\n${action}`;
      const cached = answers.get(key);
      if (cached !== undefined) {
        if (now() < cached.until) return Promise.resolve(cached);
        answers.delete(key);
      }
      let pending = asking.get(key);
      if (pending === undefined) asking.set(key, (pending = askBackend(key, identity, room, action)));
      return pending;
    },
  };
}
