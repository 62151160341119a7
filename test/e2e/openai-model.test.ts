import { createServer, type Server } from "node:http";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, collect, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Complete behind an OpenAI-compatible endpoint (--llm-url). The endpoint is an
 * external service, so the test stands one up: it streams chat.completion.chunk
 * events as the OpenAI API does, and records what it was asked.
 */
describe("Complete with an OpenAI-compatible model", () => {
  let model: Server;
  let server: TestServer;
  const asked: { authorization?: string; body: Record<string, unknown> }[] = [];
  beforeAll(async () => {
    model = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        asked.push({ authorization: req.headers.authorization, body: JSON.parse(body) as Record<string, unknown> });
        res.writeHead(200, { "content-type": "text/event-stream" });
        for (const word of ["Hello", " from", " the", " model"]) {
          res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: word }, finish_reason: null }] })}\n\n`);
        }
        res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: "length" }] })}\r\n\r\n`);
        res.write(`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 4 } })}\n\n`);
        res.end("data: [DONE]\n\n");
      });
    });
    model.listen(0, "127.0.0.1");
    await once(model, "listening");
    const address = model.address();
    const port = typeof address === "object" && address ? address.port : 0;
    server = await startTestServer({ config: { llmUrl: `http://127.0.0.1:${port}/v1`, llmApiKey: "sk-test", llmModel: "tiny" } });
  });
  afterAll(async () => {
    await server.close();
    model.close();
  });

  it("streams the model's tokens with its finish reason and usage", async () => {
    const chat = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
    const events = await collect(chat.complete({ messages: [{ role: "user", content: "hi" }], maxTokens: 4 }, bearer(await server.token("alice"))));
    expect(events.map((e) => e.delta)).toEqual(["", "Hello", " from", " the", " model", ""]);
    expect(events.at(-1)).toMatchObject({ finishReason: "length", usage: { promptTokens: 7, completionTokens: 4 } });
    expect(asked[0]).toEqual({
      authorization: "Bearer sk-test",
      body: expect.objectContaining({ model: "tiny", max_tokens: 4, stream: true, messages: [{ role: "user", content: "hi" }] }) as unknown,
    });
  });
});
