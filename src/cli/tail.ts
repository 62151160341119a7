import type { DescMethod, DescMethodStreaming, DescMethodServerStreaming, Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { createSseClient } from "../client/sse.js";
import { isResumable, isResumePoint, resumeRequest } from "../client/websocket-resume.js";
import { createWebSocketTransport, type WebSocketTransport } from "../client/websocket-transport.js";
import { backoffDelay, backoffOptions } from "../wire/backoff.js";
import { isTransient } from "../wire/transient-codes.js";
import { codeName, describeCallError, UsageError, type ExitCode } from "./errors.js";
import { findMethod, requestFromJson, responseLine } from "./methods.js";
import { authorization, clientOptions, clientOptionsHelp, endpointOf, parse, type Endpoint } from "./options.js";

const transports = ["ws", "sse", "connect", "grpc", "grpc-web"] as const;
type TransportName = (typeof transports)[number];

export const tailHelp = `Usage: rivulet tail <Service/Method> [JSON] [--transport ws|sse|connect|grpc|grpc-web] [--url URL] [--token TOKEN]

Opens a server stream and prints each response as one JSON line. When the
connection drops or the server ends the stream for a while (a restart, the
stream lifetime), it reconnects with backoff and resumes after the last
cursor, so no message is printed twice or skipped. Each reconnection is
reported on stderr. Ctrl-C (SIGINT) or SIGTERM ends it.

  --transport T    ws (WebSocket, the default), sse, connect, grpc or grpc-web
${clientOptionsHelp}

Exit codes: 0 the stream ended by itself, or was stopped by a signal; 1 it failed with an error
that retrying cannot fix (its Connect code and message on stderr); 2 usage.
Example: rivulet tail ChatService/Subscribe '{"room":"lobby","history":10}' --transport sse
`;

/** The first reconnection's ceiling for connect, grpc and grpc-web (the WebSocket and SSE clients have their own). */
const initialBackoffMs = 500;

/** `rivulet tail`: one JSON line per response of a server stream, resumed across reconnections. */
export async function tail(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<ExitCode> {
  const { values, positionals } = parse(argv, { ...clientOptions, transport: { type: "string" } }, "tail");
  if (values.help) {
    process.stdout.write(tailHelp);
    return 0;
  }
  const [name, json, ...rest] = positionals;
  if (name === undefined) throw new UsageError('name the stream, such as rivulet tail ChatService/Subscribe \'{"room":"lobby"}\'');
  if (rest.length > 0) throw new UsageError(`one JSON request only, got also "${rest.join(" ")}"; quote the JSON`);
  const transportName = (values.transport ?? "ws") as TransportName;
  if (!transports.includes(transportName)) throw new UsageError(`--transport must be one of ${transports.join(", ")}, not "${values.transport}"`);
  const method = findMethod(name);
  if (method.methodKind !== "server_streaming") {
    throw new UsageError(
      `${method.parent.typeName}/${method.name} is ${method.methodKind === "unary" ? "unary: use rivulet call" : `${method.methodKind.replace("_", " ")}, which rivulet tail does not carry`}`,
    );
  }
  const request = requestFromJson(method, json);
  const endpoint = endpointOf(values, env);

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let webSocket: WebSocketTransport | undefined;
  try {
    let responses: AsyncIterable<Message>;
    if (transportName === "ws") {
      webSocket = createWebSocketTransport({ url: `${endpoint.url.replace(/^http/, "ws")}/ws`, token: endpoint.token });
      responses = await streamOnce(webSocket, method, request, {}, stop.signal);
    } else if (transportName === "sse") {
      const client = createSseClient({ baseUrl: endpoint.url, token: endpoint.token });
      responses = client.subscribe(method as DescMethodServerStreaming, request, { signal: stop.signal, onReconnect: reportReconnect });
    } else {
      responses = resuming(rpcTransport(transportName, endpoint), method, request, authorization(endpoint), stop.signal);
    }
    for await (const response of responses) process.stdout.write(responseLine(method.output, response));
    return 0;
  } catch (error) {
    if (stop.signal.aborted) return 0;
    process.stderr.write(`rivulet: ${describeCallError(error, endpoint.url)}\n`);
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    webSocket?.close();
  }
}

/** connect-node's transport for a protocol: gRPC over HTTP/2 (h2c for http://), Connect and gRPC-Web over HTTP/1.1 as browsers and proxies mostly do. */
function rpcTransport(name: "connect" | "grpc" | "grpc-web", endpoint: Endpoint): Transport {
  const baseUrl = endpoint.url;
  if (name === "grpc") return createGrpcTransport({ baseUrl });
  if (name === "grpc-web") return createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
  return createConnectTransport({ baseUrl, httpVersion: "1.1" });
}

/** The responses of one call of a server stream over a transport. */
async function streamOnce(
  transport: Transport,
  method: DescMethod,
  request: Message,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<AsyncIterable<Message>> {
  const response = await transport.stream(
    method as DescMethodStreaming,
    signal,
    undefined,
    headers,
    (async function* () {
      yield request;
    })(),
  );
  return response.message;
}

/**
 * A server stream over connect-node's transports, which do not reconnect by
 * themselves: after a transient failure (a dropped connection, the server
 * going away or ending the stream's lifetime) the call is made again with
 * backoff, a resumable stream's request carrying the cursor of the last
 * response that had one (src/client/websocket-resume.ts, as the WebSocket
 * transport does), so nothing is printed twice or skipped.
 */
async function* resuming(
  transport: Transport,
  method: DescMethod,
  request: Message,
  headers: Record<string, string>,
  signal: AbortSignal,
): AsyncGenerator<Message> {
  const resumable = isResumable(method);
  const backoff = backoffOptions(undefined, initialBackoffMs);
  let last: Message | undefined;
  let attempt = 0;
  for (;;) {
    try {
      const next = resumeRequest(method.input, method.output, request, resumable ? last : undefined);
      for await (const response of await streamOnce(transport, method, next, headers, signal)) {
        attempt = 0;
        if (isResumePoint(method.output, response)) last = response;
        yield response;
      }
      return;
    } catch (error) {
      const failure = ConnectError.from(error);
      // A limit lifts by itself only when the server says when (retry-after); too many streams, say, is the user's to fix.
      const limitLifts = failure.code === Code.ResourceExhausted && failure.metadata.has("retry-after");
      if (signal.aborted || !isTransient(failure.code, { limitLifts })) throw failure;
      const delay = backoffDelay(attempt++, backoff);
      reportReconnect(failure, delay);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
      });
      if (signal.aborted) throw new ConnectError("stopped", Code.Canceled);
    }
  }
}

/** One stderr line per reconnection, so a user (and a test) sees why the stream paused. */
function reportReconnect(reason: ConnectError, delayMs: number): void {
  process.stderr.write(`rivulet: ${codeName(reason.code)}: ${reason.rawMessage}; resuming in ${delayMs} ms\n`);
}
