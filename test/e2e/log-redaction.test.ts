// No log line carries a credential, however the client spells the token's
// query parameter: the server decodes the name before reading it, so the log
// must recognise every spelling the server accepts.
import { once } from "node:events";
import { Writable } from "node:stream";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CounterService } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { createWebSocketTransport } from "../../src/client/websocket-transport.js";
import { redactUrl } from "../../src/log.js";
import { counterService } from "../helpers/counter-service.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { readSse, ssePath } from "../helpers/sse.js";

/** Spellings of `access_token` that URLSearchParams (and so the server) decodes to it. */
const spellings = ["access_token", "access%5Ftoken", "access%5ftoken", "%61ccess_token", "%61%63%63%65%73%73%5F%74%6F%6B%65%6E"];

describe("log redaction", () => {
  let server: TestServer;
  let token: string;
  const lines: string[] = [];
  beforeAll(async () => {
    server = await startTestServer({
      config: { logLevel: "debug" },
      extraServices: () => [counterService()],
      // pino writes each line synchronously into this stream: a line is here once the code that logs it has run.
      logDestination: new Writable({ write: (chunk: Buffer, _encoding, callback) => (lines.push(chunk.toString()), callback()) }),
    });
    token = await server.token("alice");
  });
  afterAll(() => server.close());

  const logged = (message: string) => lines.filter((line) => (JSON.parse(line) as { msg: string }).msg === message);

  it("redacts an SSE token under every spelling the server accepts (the debug 'sse stream opened' line)", async () => {
    for (const spelling of spellings) {
      const response = await fetch(`${server.url}${ssePath("rivulet.chat.v1.ChatService/Subscribe", { room: "redaction" })}&${spelling}=${token}`);
      // 200 and a stream: the server took the token under this spelling.
      expect({ spelling, status: response.status }).toEqual({ spelling, status: 200 });
      const events = readSse(response);
      expect((await events.next()).value).toEqual({ event: "retry", data: "2000" });
      await events.return(undefined);
    }
    const opened = logged("sse stream opened");
    expect(opened).toHaveLength(spellings.length);
    for (const line of opened) expect(line).toContain("=[REDACTED]");
    expect(lines.join("")).not.toContain(token);
  });

  it("redacts a WebSocket token under every spelling: the foreign-origin refusal (info) and an internal error's procedure", async () => {
    const base = server.url.replace(/^http/, "ws");
    for (const spelling of spellings) {
      const refused = new WebSocket(`${base}/ws?${spelling}=${token}`, ["rivulet.v1"], { origin: "https://evil.example" });
      const [error] = (await once(refused, "error")) as [Error];
      expect(error.message).toBe("Unexpected server response: 403");

      // No per-call credentials: the call runs as alice only if the handshake's token was taken under this spelling.
      const transport = createWebSocketTransport({ url: `${base}/ws?${spelling}=${token}`, WebSocket });
      try {
        const error = await createClient(CounterService, transport)
          .echo({ text: "crash" })
          .then(
            () => undefined,
            (reason: unknown) => ConnectError.from(reason),
          );
        expect({ spelling, code: error?.code }).toEqual({ spelling, code: Code.Internal });
      } finally {
        transport.close();
      }
    }
    expect(logged("websocket handshake from a foreign origin refused")).toHaveLength(spellings.length);
    const internal = logged("internal error").filter((line) => line.includes("/ws?"));
    expect(internal).toHaveLength(spellings.length);
    for (const line of [...logged("websocket handshake from a foreign origin refused"), ...internal]) expect(line).toContain("=[REDACTED]");
    expect(lines.join("")).not.toContain(token);
  });

  it("redacts by the decoded name, keeps everything else as sent", () => {
    expect(redactUrl("/sse/X?message=%7B%7D&access%5Ftoken=abc.def.ghi&b=1")).toBe("/sse/X?message=%7B%7D&access%5Ftoken=[REDACTED]&b=1");
    expect(redactUrl("http://h/ws?ACCESS_TOKEN=a&access+token=b&x=1#access_token=c")).toBe(
      "http://h/ws?ACCESS_TOKEN=[REDACTED]&access+token=b&x=1#access_token=[REDACTED]",
    );
    expect(redactUrl("/ws?access_token")).toBe("/ws?access_token=[REDACTED]");
    expect(redactUrl("/healthz")).toBe("/healthz");
  });
});
