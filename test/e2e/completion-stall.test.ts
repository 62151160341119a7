import { createServer, type ServerResponse, type Server } from "node:http";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, collect, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const chunk = (content: string) => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;

/**
 * A model that goes silent longer than --completion-stall: readers get
 * finish_reason "error" instead of waiting forever, and when the model
 * speaks again its late tokens are refused (nothing follows the final event).
 */
describe("a completion whose model stalls", () => {
  let model: Server;
  let server: TestServer;
  let stalled: ServerResponse | undefined;
  const requestClosed = new Promise<void>((resolve) => {
    model = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(chunk("first"));
      stalled = res; // and then nothing, until the test says so
      res.on("close", () => resolve());
    });
  });
  beforeAll(async () => {
    model.listen(0, "127.0.0.1");
    await once(model, "listening");
    const address = model.address();
    const port = typeof address === "object" && address ? address.port : 0;
    server = await startTestServer({ config: { llmUrl: `http://127.0.0.1:${port}/v1`, completionStallMs: 1000 } });
  });
  afterAll(async () => {
    await server.close();
    model.close();
  });

  it("ends with finish_reason error, and the model's late tokens are dropped", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
    const alice = bearer(await server.token("alice"));
    const events = await collect(chat.complete({ messages: [{ role: "user", content: "hi" }], completionId: "stall-1" }, alice));
    expect(events.map((event) => [event.delta, event.finishReason])).toEqual([
      ["", ""],
      ["first", ""],
      ["", "error"],
    ]);
    // The model comes back: the generator's next append is refused, so it stops and hangs up.
    stalled!.write(chunk("late"));
    await requestClosed;
    const replay = await collect(chat.complete({ completionId: "stall-1" }, alice));
    expect(replay.map((event) => event.cursor)).toEqual(events.map((event) => event.cursor));
  });
});
