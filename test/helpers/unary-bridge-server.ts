import http from "node:http";
import http2 from "node:http2";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { CounterService, EchoRequestSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { startTestServer, type TestServer } from "./server.js";

/** The unary bridge's differential tests (Connect, gRPC, gRPC-Web): their request size limit and paths. */
export const maxMessageBytes = 4096;
export const echoPath = "/rivulet.testing.v1.CounterService/Echo";
export const infoPath = "/rivulet.admin.v1.AdminService/Info";

/** Echo, plus texts that fail in the ways the differential cases need, and one that waits for the call's deadline (or cancellation). */
function echoService(): ServiceImpl<typeof CounterService> {
  return {
    // eslint-disable-next-line require-yield -- the stream is not used here; only Echo is.
    async *count() {
      throw new ConnectError("not used", Code.Unimplemented);
    },
    async echo(request, context) {
      if (request.text === "") throw new ConnectError("text is required", Code.InvalidArgument);
      if (request.text.startsWith("fail:")) throw new ConnectError(request.text, Code.InvalidArgument);
      if (request.text === "crash") throw new Error("ECONNREFUSED 10.1.2.3:5432 in /srv/secret/db.ts");
      if (request.text === "missing") throw new ConnectError("no such thing: ünïcödé ✓ 100%", Code.NotFound, { "x-hint": "look elsewhere" });
      if (request.text === "details") {
        throw new ConnectError("with details", Code.FailedPrecondition, undefined, [{ desc: EchoRequestSchema, value: { text: "the detail" } }]);
      }
      if (request.text === "wait") {
        await new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }));
        throw ConnectError.from(context.signal.reason);
      }
      context.responseHeader.set("x-echo", "header");
      context.responseTrailer.set("x-echo-trailer", "trailer");
      return { text: request.text };
    },
  };
}

/**
 * A server for the differential tests, with an h2c session to it. Two calls
 * per user, then the publish bucket is empty for a thousand seconds: each
 * case uses a fresh user for the rate-limit case to be reachable.
 */
export async function startUnaryBridgeServer(): Promise<{ server: TestServer; session: http2.ClientHttp2Session }> {
  const server = await startTestServer({
    config: { maxMessageBytes, publishRate: 0.001, publishBurst: 2 },
    extraServices: () => [{ service: CounterService, impl: echoService() }],
  });
  return { server, session: http2.connect(server.url) };
}

/** Closes what `startUnaryBridgeServer` opened. */
export async function stopUnaryBridgeServer(server: TestServer | undefined, session: http2.ClientHttp2Session | undefined): Promise<void> {
  session?.close();
  await server?.close();
}

/** One answer as it came off the wire, for comparing the bridge's with connect-node's. */
export interface Answer {
  readonly status: number;
  /** Name and value pairs in wire order, `date` left out. */
  readonly headers: readonly (readonly [string, string])[];
  /** HTTP/2 trailers (gRPC); none over HTTP/1.1. */
  readonly trailers: readonly (readonly [string, string])[];
  /** The body, base64. */
  readonly body: string;
}

/** A POST over HTTP/1.1, on a connection of its own. */
export function postHttp1(baseUrl: string, path: string, headers: Record<string, string>, body: Uint8Array): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${baseUrl}${path}`, { method: "POST", headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const pairs: [string, string][] = [];
        for (let i = 0; i < response.rawHeaders.length; i += 2) pairs.push([response.rawHeaders[i]!.toLowerCase(), response.rawHeaders[i + 1]!]);
        resolve({
          status: response.statusCode ?? 0,
          headers: pairs.filter(([name]) => name !== "date"),
          trailers: [],
          body: Buffer.concat(chunks).toString("base64"),
        });
      });
    });
    request.on("error", reject);
    request.end(body);
  });
}

/** A POST as one stream of `session` (h2c). */
export function postHttp2(session: http2.ClientHttp2Session, path: string, headers: Record<string, string>, body: Uint8Array): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path, te: "trailers", ...headers });
    const chunks: Buffer[] = [];
    let status = 0;
    let pairs: [string, string][] = [];
    let trailers: [string, string][] = [];
    stream.on("response", (head) => {
      status = Number(head[":status"]);
      pairs = pairsOf(head);
    });
    stream.on("trailers", (head) => {
      trailers = pairsOf(head);
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve({ status, headers: pairs, trailers, body: Buffer.concat(chunks).toString("base64") }));
    stream.on("error", reject);
    stream.end(body);
  });
}

/** HTTP/2 header pairs in order, pseudo-headers and `date` left out. */
const pairsOf = (head: http2.IncomingHttpHeaders): [string, string][] =>
  Object.entries(head)
    .filter(([name]) => !name.startsWith(":") && name !== "date")
    .map(([name, value]) => [name, String(value)]);
