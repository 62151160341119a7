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
