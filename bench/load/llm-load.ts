import type { ClientSessionOptions } from "node:http2";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createHmacTokens } from "../../src/auth/tokens.js";
import { createEmbeddedGenerator } from "../../src/services/generator.js";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { createHistogram, type Histogram } from "../lib/histogram.js";
import { nowMicros } from "../lib/marker.js";
import type { LlmReport, LoadRequest } from "./load-protocol.js";

// Completions per HTTP/2 connection: Rivulet allows 1000 streams per connection; browsers open far fewer.
const streamsPerConnection = 100;
/** Tokens per completion in a warm-up round (see scenarios/llm.ts). */
const warmUpTokens = 20;

interface Timings {
  readonly timeToFirstToken: Histogram;
  readonly interToken: Histogram;
  tokens: number;
}

/** Feeds one completion's token times into the timings: the first from its start, the rest from the previous token. */
async function timeTokens(start: number, tokens: AsyncIterable<unknown>, timings: Timings): Promise<void> {
  let previous: number | undefined;
  for await (const _ of tokens) {
    const now = nowMicros();
    if (previous === undefined) timings.timeToFirstToken.record(now - start);
    else timings.interToken.record(now - previous);
    previous = now;
    timings.tokens++;
  }
}

/**
 * Scenario (d): `completions` concurrent ChatService.Complete streams against
 * Rivulet (generated Connect client over h2c: message decoding is needed here
 * to tell tokens apart, and the rate is low), or the same number of concurrent
 * generations from the embedded generator called directly, the floor Rivulet
 * adds its cost to.
 */
export async function runLlmLoad(request: Extract<LoadRequest, { type: "llm" }>): Promise<LlmReport> {
  const timings: Timings = { timeToFirstToken: createHistogram(), interToken: createHistogram(), tokens: 0 };
  let failed = 0;
  let firstError: string | undefined;
  const generator = createEmbeddedGenerator({ tokenIntervalMs: request.tokenIntervalMs });
  const token = await createHmacTokens(request.secret).mint({ userId: "bench-llm", ttlSeconds: 3600 });
  const clients = Array.from({ length: Math.ceil(request.completions / streamsPerConnection) }, (_, index) =>
    createClient(
      ChatService,
      createConnectTransport({
        baseUrl: `http://127.0.0.1:${request.port}`,
        httpVersion: "2",
        // http2.connect hands its options to net.connect, which binds localAddress; the types omit it.
        nodeOptions: { localAddress: request.sourceAddresses[index % request.sourceAddresses.length] } as ClientSessionOptions,
      }),
    ),
  );
  const signal = AbortSignal.timeout(120_000);
  // One untimed completion first, so neither side's first-call costs (JIT, session setup, key import) count.
  const warmUp = [{ role: "user", content: "warm up" }];
  if (request.mode === "direct") for await (const _ of generator.generate({ messages: warmUp, model: "", maxTokens: 2 }, signal));
  else
    for (const client of clients)
      for await (const _ of client.complete({ messages: warmUp, maxTokens: 2 }, { headers: { authorization: `Bearer ${token}` }, signal }));
  // 0 asks for the server's default (256), more than any reply here.
  const maxTokens = request.warmUp ? warmUpTokens : request.mode === "direct" ? 1000 : 0;
  const runs = Array.from({ length: request.completions }, async (_, index) => {
    const messages = [{ role: "user", content: `bench completion ${index}: tell me about streams` }];
    const start = nowMicros();
    try {
      if (request.mode === "direct") {
        await timeTokens(start, filterTokens(generator.generate({ messages, model: "", maxTokens }, signal)), timings);
      } else {
        const client = clients[Math.floor(index / streamsPerConnection)]!;
        const stream = client.complete({ messages, maxTokens }, { headers: { authorization: `Bearer ${token}` }, signal });
        await timeTokens(start, filterDeltas(stream), timings);
      }
    } catch (error) {
      failed++;
      firstError ??= error instanceof Error ? error.message : String(error);
    }
  });
  await Promise.all(runs);
  return {
    type: "llm-done",
    completed: request.completions - failed,
    failed,
    firstError,
    tokens: timings.tokens,
    timeToFirstToken: timings.timeToFirstToken.toData(),
    interToken: timings.interToken.toData(),
  };
}

async function* filterTokens(events: AsyncIterable<{ kind: string }>): AsyncIterable<unknown> {
  for await (const event of events) if (event.kind === "token") yield event;
}

async function* filterDeltas(responses: AsyncIterable<{ delta: string }>): AsyncIterable<unknown> {
  for await (const response of responses) if (response.delta !== "") yield response;
}
