import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createOpenAiGenerator, type GenerateEvent } from "../../src/services/generator.js";

const chunk = (content: string) => JSON.stringify({ choices: [{ index: 0, delta: { content }, finish_reason: null }] });
const request = { messages: [{ role: "user", content: "hi" }], model: "", maxTokens: 8 };

/**
 * createOpenAiGenerator against a real local endpoint that streams its answer
 * the way an OpenAI-compatible server may: the event stream's every line
 * ending (WHATWG HTML §9.2.5) and `data` split over lines, written in pieces.
 */
describe("OpenAI-compatible generator: reading the upstream's event stream", () => {
  let model: Server | undefined;
  afterEach(async () => {
    model?.closeAllConnections();
    model?.close();
    if (model) await once(model, "close");
    model = undefined;
  });

  /** An endpoint answering every request with these pieces, each its own write. */
  async function endpoint(pieces: readonly string[], handle?: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    model = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const piece of pieces) res.write(piece);
      if (handle) handle(req, res);
      else res.end();
    });
    model.listen(0, "127.0.0.1");
    await once(model, "listening");
    return `http://127.0.0.1:${(model.address() as AddressInfo).port}/v1`;
  }

  async function generate(baseUrl: string, signal = new AbortController().signal): Promise<GenerateEvent[]> {
    const events: GenerateEvent[] = [];
    for await (const event of createOpenAiGenerator({ baseUrl, defaultModel: "tiny" }).generate(request, signal)) events.push(event);
    return events;
  }

  it("reads CR-only line endings and data over several lines", async () => {
    const usage = JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: "length" }], usage: { prompt_tokens: 3 } });
    const baseUrl = await endpoint([
      `: keep-alive\r\rdata: ${chunk("Hello")}\r\r`,
      // One JSON object over three data lines, joined with LF: still JSON.
      `data: {"choices":[{"index":0,\rdata: "delta":{"content":" multi"},\rdata: "finish_reason":null}]}\r\r`,
      // A CR at the end of one write, the blank line's CR at the start of the next.
      `data: ${chunk(" line")}\r`,
      `\rdata: ${usage}\r\n\r\n`,
      "data: [DONE]\n\n",
    ]);
    expect(await generate(baseUrl)).toEqual([
      { kind: "token", text: "Hello" },
      { kind: "token", text: " multi" },
      { kind: "token", text: " line" },
      { kind: "end", finishReason: "length", promptTokens: 3 },
    ]);
  });

  it("ends with stop when the stream closes without [DONE]", async () => {
    const baseUrl = await endpoint([`data:${chunk("only")}\n\n`]);
    expect(await generate(baseUrl)).toEqual([
      { kind: "token", text: "only" },
      { kind: "end", finishReason: "stop", promptTokens: 0 },
    ]);
  });

  it("stops reading the upstream when the consumer stops", async () => {
    let closed: Promise<unknown> | undefined;
    const baseUrl = await endpoint([`data: ${chunk("first")}\n\n`], (_req, res) => {
      closed = once(res, "close");
    });
    const stream = createOpenAiGenerator({ baseUrl, defaultModel: "tiny" }).generate(request, new AbortController().signal)[Symbol.asyncIterator]();
    expect((await stream.next()).value).toEqual({ kind: "token", text: "first" });
    await stream.return?.();
    // The endpoint never ends its response: only the generator's cancel closes it.
    await closed;
  });
});
