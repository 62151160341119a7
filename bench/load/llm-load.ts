import http2, { type ClientHttp2Session, type ClientSessionOptions } from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createHmacTokens } from "../../src/auth/tokens.js";
import { createEmbeddedGenerator } from "../../src/services/generator.js";
import { CompleteRequestSchema, CompleteResponseSchema } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { envelope } from "../targets/rivulet-request.js";
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
  const sessions =
    request.mode === "direct"
      ? []
      : Array.from({ length: Math.ceil(request.completions / streamsPerConnection) }, (_, index) =>
          http2
            .connect(`http://127.0.0.1:${request.port}`, {
              // http2.connect hands its options to net.connect, which binds localAddress; the types omit it.
              localAddress: request.sourceAddresses[index % request.sourceAddresses.length],
            } as ClientSessionOptions)
            // A session error also fails its streams, which count as failed completions.
            .on("error", () => undefined),
        );
  const signal = AbortSignal.timeout(120_000);
  // One untimed completion first, so neither side's first-call costs (JIT, session setup, key import) count.
  const warmUp = [{ role: "user", content: "warm up" }];
  if (request.mode === "direct") for await (const _ of generator.generate({ messages: warmUp, model: "", maxTokens: 2 }, signal));
  else for (const session of sessions) for await (const _ of complete(session, token, warmUp, 2, signal));
  // 0 asks for the server's default (256), more than any reply here.
  const maxTokens = request.warmUp ? warmUpTokens : request.mode === "direct" ? 1000 : 0;
  const runs = Array.from({ length: request.completions }, async (_, index) => {
    const messages = [{ role: "user", content: `bench completion ${index}: tell me about streams` }];
    const start = nowMicros();
    try {
      if (request.mode === "direct") {
        await timeTokens(start, filterTokens(generator.generate({ messages, model: "", maxTokens }, signal)), timings);
      } else {
        const session = sessions[Math.floor(index / streamsPerConnection)]!;
        await timeTokens(start, filterDeltas(complete(session, token, messages, maxTokens, signal)), timings);
      }
    } catch (error) {
      failed++;
      firstError ??= error instanceof Error ? error.message : String(error);
    }
  });
  await Promise.all(runs);
  for (const session of sessions) session.close();
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

/**
 * One ChatService.Complete call over the Connect protocol on an HTTP/2
 * session, its responses decoded as they arrive. By hand, not the generated
 * client: connect-node's client took about 140 ms of the load generator's CPU
 * to start 500 completions (interceptors, header conversions, async-iterable
 * pipelines per call), all of it counted in the time to first token. Each
 * call here is one `session.request`, one write and an envelope parser.
 * Ends with the stream; throws the end-of-stream error, if any.
 */
async function* complete(
  session: ClientHttp2Session,
  token: string,
  messages: readonly { role: string; content: string }[],
  maxTokens: number,
  signal: AbortSignal,
): AsyncGenerator<{ delta: string }> {
  const stream = session.request(
    {
      ":method": "POST",
      ":path": "/rivulet.chat.v1.ChatService/Complete",
      "content-type": "application/connect+proto",
      "connect-protocol-version": "1",
      authorization: `Bearer ${token}`,
    },
    { signal },
  );
  stream.end(envelope(toBinary(CompleteRequestSchema, create(CompleteRequestSchema, { messages: [...messages], maxTokens }))));
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const size = pending.readUInt32BE(1);
      if (pending.length < 5 + size) break;
      const flags = pending[0]!;
      const payload = pending.subarray(5, 5 + size);
      pending = pending.subarray(5 + size);
      if ((flags & 0x02) !== 0) {
        // End of stream: a JSON object, with `error` when the call failed.
        const end = JSON.parse(payload.toString("utf8")) as { error?: { code?: string; message?: string } };
        if (end.error) throw new Error(`[${end.error.code ?? "unknown"}] ${end.error.message ?? ""}`);
        return;
      }
      yield fromBinary(CompleteResponseSchema, payload);
    }
  }
  throw new Error("the stream ended without an end-of-stream message");
}
