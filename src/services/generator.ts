import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { readSseEvents } from "../wire/read-sse-events.js";

/** What a model is asked. */
export interface GenerateRequest {
  readonly messages: readonly { readonly role: string; readonly content: string }[];
  readonly model: string;
  readonly maxTokens: number;
}

/** One step of a generation: a token, or the end with its reason. */
export type GenerateEvent =
  { readonly kind: "token"; readonly text: string } | { readonly kind: "end"; readonly finishReason: "stop" | "length"; readonly promptTokens: number };

/** The model behind ChatService.Complete: an async stream of tokens that stops when `signal` aborts. */
export interface Generator {
  generate(request: GenerateRequest, signal: AbortSignal): AsyncIterable<GenerateEvent>;
}

const vocabulary = (
  "the a stream of tokens flows through rivulet to every client in order and resumes " +
  "after a drop without losing or repeating anything while the server keeps generating " +
  "text one word at a time so you can watch the reply grow"
).split(" ");

/**
 * The embedded model: deterministic text (the same prompt gives the same
 * reply) at a fixed pace, so Complete works, and is testable, with nothing
 * else running. The reply is 12 to 43 words long, cut at `maxTokens`.
 */
export function createEmbeddedGenerator(options: { tokenIntervalMs: number }): Generator {
  return {
    async *generate(request, signal) {
      const prompt = request.messages.map((m) => `${m.role}:${m.content}`).join("\n");
      const promptTokens = request.messages.reduce((n, m) => n + m.content.split(/\s+/).filter(Boolean).length, 0);
      let seed = 2166136261;
      for (let i = 0; i < prompt.length; i++) seed = Math.imul(seed ^ prompt.charCodeAt(i), 16777619) >>> 0;
      const length = 12 + (seed % 32);
      for (let i = 0; i < length; i++) {
        if (i >= request.maxTokens) {
          yield { kind: "end", finishReason: "length", promptTokens };
          return;
        }
        if (options.tokenIntervalMs > 0) await sleep(options.tokenIntervalMs, undefined, { signal });
        else if (signal.aborted) throw signal.reason;
        seed = Math.imul(seed ^ (seed >>> 15), 2246822507) >>> 0;
        const word = vocabulary[seed % vocabulary.length] ?? "token";
        yield { kind: "token", text: i === 0 ? word : ` ${word}` };
      }
      yield { kind: "end", finishReason: "stop", promptTokens };
    },
  };
}

/**
 * A model behind any OpenAI-compatible HTTP endpoint (`POST {baseUrl}/chat/completions`
 * with `stream: true`), read as the Server-Sent Events it answers with, by the
 * clients' own parser: any line ending, `data` over several lines.
 */
export function createOpenAiGenerator(options: { baseUrl: string; apiKey?: string; defaultModel: string }): Generator {
  return {
    async *generate(request, signal) {
      const response = await fetch(`${options.baseUrl.replace(/\/$/, "")}/chat/completions`, {
        method: "POST",
        signal,
        headers: {
          "content-type": "application/json",
          ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
        },
        body: JSON.stringify({
          model: request.model || options.defaultModel,
          messages: request.messages,
          max_tokens: request.maxTokens,
          stream: true,
          stream_options: { include_usage: true },
        }),
      });
      if (!response.ok || !response.body) {
        throw new ConnectError(`model endpoint answered HTTP ${response.status}`, Code.Unavailable);
      }
      let finishReason: "stop" | "length" = "stop";
      let promptTokens = 0;
      // Each event's data is one chunk of JSON, or `[DONE]` (whatever the event's type: the API sets none).
      for await (const event of readSseEvents(response.body)) {
        if (event.data.trim() === "[DONE]") {
          yield { kind: "end", finishReason, promptTokens };
          return;
        }
        const parsed = parseChunk(event.data);
        if (parsed.usage) promptTokens = parsed.usage;
        if (parsed.finishReason === "length") finishReason = "length";
        if (parsed.content) yield { kind: "token", text: parsed.content };
      }
      yield { kind: "end", finishReason, promptTokens };
    },
  };
}

function parseChunk(data: string): { content?: string; finishReason?: string; usage?: number } {
  try {
    const chunk = JSON.parse(data) as {
      choices?: { delta?: { content?: unknown }; finish_reason?: unknown }[];
      usage?: { prompt_tokens?: unknown };
    };
    const choice = chunk.choices?.[0];
    return {
      content: typeof choice?.delta?.content === "string" ? choice.delta.content : undefined,
      finishReason: typeof choice?.finish_reason === "string" ? choice.finish_reason : undefined,
      usage: typeof chunk.usage?.prompt_tokens === "number" ? chunk.usage.prompt_tokens : undefined,
    };
  } catch {
    throw new ConnectError("model endpoint sent malformed JSON", Code.Unavailable);
  }
}
