import { fromBinary, fromJsonString, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
// connect-es internals: pinned exactly, guarded by test/platform/pinned-internals.test.ts (docs/development.md, "Pinned versions").
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import { bearerAuthorization, findBearerToken } from "../../auth/credentials.js";
import { requestHeaders } from "../../http/request-headers.js";
import type { BridgeMethod } from "../../call/method-registry.js";
import type { HttpRequest } from "../../http/mount.js";
import { cursorFieldOf } from "../../wire/cursor-field.js";
import { checkEventId } from "./encoder.js";

/** Where SSE lives: `/sse/<package>.<Service>/<Method>`. */
export const ssePathPrefix = "/sse/";

/** A valid SSE request, ready to invoke. */
export interface SseRequest {
  /** Full method name, `rivulet.chat.v1.ChatService/Subscribe`. */
  readonly name: string;
  readonly method: BridgeMethod;
  /** The method's input, its cursor already replaced by `Last-Event-ID` when one was sent. */
  readonly input: Message;
  /** The request's headers for the interceptors, with a cookie or query token moved to `authorization`. */
  readonly header: Headers;
  /** A cursor was given: a stream that then ends with no message answers 204. */
  readonly resuming: boolean;
  /** The token came in the URL: the response must not be stored anywhere. */
  readonly tokenInQuery: boolean;
}

/** A request refused before any call: its HTTP status and the Connect error for the JSON body. */
export interface SseRequestFailure {
  readonly status: number;
  readonly error: ConnectError;
  /** For 405: the HTTP methods the path allows. */
  readonly allow?: string;
}

/**
 * Reads an SSE request: the method from the path, its input from the query
 * (Connect GET's parameters: `message`, `encoding`, `base64`, `compression`),
 * the resume position from `Last-Event-ID` (header, else `lastEventId`
 * query parameter) and the credentials. Returns a failure with its HTTP
 * status instead of throwing.
 */
export function parseSseRequest(
  req: HttpRequest,
  url: URL,
  methods: ReadonlyMap<string, BridgeMethod>,
  maxMessageBytes: number,
): SseRequest | SseRequestFailure {
  const name = url.pathname.slice(ssePathPrefix.length);
  const method = methods.get(name);
  if (!method) return { status: 404, error: new ConnectError(`unknown method ${name}: SSE serves /sse/<package>.<Service>/<Method>`, Code.Unimplemented) };
  if (method.kind !== "server_streaming") {
    return {
      status: 405,
      allow: "",
      error: new ConnectError(`${name} is a ${method.kind} method; SSE serves server-streaming methods only (call it with POST /${name})`, Code.Unimplemented),
    };
  }
  if (req.method !== "GET") {
    return { status: 405, allow: "GET", error: new ConnectError(`SSE takes GET, not ${req.method ?? "?"}`, Code.Unimplemented) };
  }
  try {
    const query = url.searchParams;
    const input = decodeInput(method, query, maxMessageBytes);
    const header = requestHeaders(req);
    const lastEventId = header.get("last-event-id") ?? query.get("lastEventId");
    const cursorField = method.policy.resumable ? cursorFieldOf(method.method.input) : undefined;
    // An empty Last-Event-ID means "no position" (§9.2.3: browsers send none then).
    if (lastEventId !== null && lastEventId !== "") {
      checkEventId(lastEventId, header.has("last-event-id") ? "Last-Event-ID" : "lastEventId");
      if (cursorField) (input as unknown as Record<string, unknown>)[cursorField.localName] = lastEventId;
    }
    const cursor = cursorField ? (input as unknown as Record<string, unknown>)[cursorField.localName] : "";
    moveTokenToAuthorization(header, query);
    // Whichever credential is used, a URL holding a token must not be cached.
    const tokenInQuery = query.has("access_token");
    return { name, method, input, header, resuming: typeof cursor === "string" && cursor !== "", tokenInQuery };
  } catch (reason) {
    // Our own checks throw ConnectErrors; anything else is unexpected, and its text stays out of the response.
    const error = reason instanceof ConnectError ? reason : new ConnectError("malformed request", Code.InvalidArgument, undefined, undefined, reason);
    return { status: codeToHttpStatus(error.code), error };
  }
}

/** The input message, as a Connect GET request carries it (https://connectrpc.com/docs/protocol#unary-get-request). */
function decodeInput(method: BridgeMethod, query: URLSearchParams, maxMessageBytes: number): Message {
  const encoding = query.get("encoding") ?? "json";
  if (encoding !== "json" && encoding !== "proto") throw invalid(`encoding must be "json" or "proto", not "${encoding}"`);
  const compression = query.get("compression");
  if (compression !== null && compression !== "identity") throw invalid(`compression "${compression}" is not supported; send the message uncompressed`);
  const base64 = query.get("base64");
  if (base64 !== null && base64 !== "1") throw invalid('base64 must be "1" when given');
  const text = query.get("message") ?? "";
  if (encoding === "proto" && base64 === null) throw invalid("encoding=proto needs base64=1 and the message in base64url");
  let bytes: Uint8Array | undefined;
  if (base64 !== null) {
    // base64url as Connect GET sends it; standard base64 too. A "+" that was not
    // percent-encoded arrives as a space (form encoding), so put it back.
    const clean = text.replace(/ /g, "+");
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) throw invalid("message is not valid base64 or base64url");
    bytes = Buffer.from(clean, "base64");
  }
  const size = bytes?.length ?? Buffer.byteLength(text);
  if (size > maxMessageBytes) throw new ConnectError(`message is ${size} bytes, more than the limit of ${maxMessageBytes}`, Code.ResourceExhausted);
  const schema = method.method.input;
  try {
    if (encoding === "proto") return fromBinary(schema, bytes ?? new Uint8Array());
    const json = bytes ? new TextDecoder("utf-8", { fatal: true }).decode(bytes) : text;
    return fromJsonString(schema, json === "" ? "{}" : json);
  } catch (error) {
    // protobuf-es's messages name the field and the problem, never server internals.
    throw invalid(
      `message is not a valid ${schema.typeName} in ${encoding === "proto" ? "Protobuf binary" : "proto3 JSON"}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/**
 * The auth interceptor reads only `authorization`; a browser's cookie or
 * `access_token` query parameter (EventSource cannot set headers) is moved
 * there, so the one interceptor authenticates every SSE call.
 */
function moveTokenToAuthorization(header: Headers, query: URLSearchParams): void {
  if (header.has("authorization")) return;
  const token = findBearerToken(header, query);
  if (token === undefined) return;
  header.set("authorization", bearerAuthorization(token));
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}
