import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type CompleteResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, collect, take, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

const prompt = [{ role: "user", content: "Explain resumable streams" }];
const text = (events: CompleteResponse[]) => events.map((e) => e.delta).join("");

describe("ChatService.Complete: resumable, cancelable completions", () => {
  let server: TestServer;
  let alice: ReturnType<typeof bearer>;
  let chat: ReturnType<typeof clientFor<typeof ChatService>>;
  beforeAll(async () => {
    // A slow pace, so a completion is still generating while the test drops and resumes.
    server = await startTestServer({ config: { tokenIntervalMs: 15 } });
    alice = bearer(await server.token("alice"));
    chat = clientFor(ChatService, transportFor(server.url, "connect", "2"));
  });
  afterAll(() => server.close());

  it("streams a start event, tokens, and a final event with usage", async () => {
    const events = await collect(chat.complete({ messages: prompt, maxTokens: 200 }, alice));
    const [start, ...rest] = events;
    expect(start).toMatchObject({ delta: "", finishReason: "" });
    expect(start!.completionId).toMatch(/^[\w-]{16}$/);
    const final = events.at(-1)!;
    expect(final.finishReason).toBe("stop");
    expect(final.usage).toMatchObject({ promptTokens: 3, completionTokens: rest.length - 1 });
    expect(new Set(events.map((e) => e.completionId)).size).toBe(1);
  });

  it("stops at max_tokens with finish_reason length", async () => {
    const events = await collect(chat.complete({ messages: prompt, maxTokens: 3 }, alice));
    expect(events.filter((e) => e.delta !== "")).toHaveLength(3);
    expect(events.at(-1)?.finishReason).toBe("length");
  });

  it("keeps generating after the caller drops; resuming with completion_id and cursor gives exactly the rest", async () => {
    const reference = await collect(chat.complete({ messages: prompt, maxTokens: 200 }, alice));
    const head = await take(chat.complete({ messages: prompt, maxTokens: 200 }, alice), 4); // then disconnect
    const { completionId, cursor } = head.at(-1)!;
    const rest = await collect(chat.complete({ completionId, cursor }, alice));
    const all = [...head, ...rest];
    expect(text(all)).toBe(text(reference));
    expect(all.at(-1)?.finishReason).toBe("stop");
    expect(new Set(all.map((e) => e.cursor)).size).toBe(all.length); // no event twice
    // Resuming at the final cursor: the stream is finished, nothing more comes.
    expect(await collect(chat.complete({ completionId, cursor: all.at(-1)!.cursor }, alice))).toEqual([]);
    // Without a cursor the whole completion replays, from the same log.
    expect(text(await collect(chat.complete({ completionId }, alice)))).toBe(text(reference));
  });

  it("starts once per client-chosen completion_id, however often it is called", async () => {
    const [a, b] = await Promise.all([
      collect(chat.complete({ messages: prompt, completionId: "my-completion-1" }, alice)),
      collect(chat.complete({ messages: prompt, completionId: "my-completion-1" }, alice)),
    ]);
    expect(a.map((e) => e.cursor)).toEqual(b.map((e) => e.cursor));
    expect(a[0]?.completionId).toBe("my-completion-1");
  });

  it("CancelCompletion stops the generation: the stream ends with finish_reason canceled", async () => {
    const stream = chat.complete({ messages: prompt, maxTokens: 4000, completionId: "to-cancel" }, alice)[Symbol.asyncIterator]();
    const first = (await stream.next()).value as CompleteResponse;
    await stream.next();
    expect(await chat.cancelCompletion({ completionId: first.completionId }, alice)).toMatchObject({ canceled: true });
    const rest: CompleteResponse[] = [];
    for (let r = await stream.next(); !r.done; r = await stream.next()) rest.push(r.value);
    expect(rest.at(-1)?.finishReason).toBe("canceled");
    expect(rest.at(-1)?.usage?.completionTokens).toBeLessThan(4000);
    // Canceling a finished completion says so.
    expect(await chat.cancelCompletion({ completionId: first.completionId }, alice)).toMatchObject({ canceled: false });
  });

  it("keeps completions private: another user cannot resume or cancel them", async () => {
    const events = await collect(chat.complete({ messages: prompt, maxTokens: 5 }, alice));
    const bob = bearer(await server.token("bob"));
    const { completionId, cursor } = events[1]!;
    await expect(collect(chat.complete({ completionId, cursor }, bob))).rejects.toMatchObject({ code: 3 });
    await expect(chat.cancelCompletion({ completionId }, bob)).rejects.toMatchObject({ code: 5 });
  });

  it("refuses a cursor of another completion (invalid_argument) and cancels of unknown ids (not_found)", async () => {
    const events = await collect(chat.complete({ messages: prompt, maxTokens: 2, completionId: "known" }, alice));
    // A cursor names its topic: one from "known" does not fit "never-started".
    await expect(collect(chat.complete({ completionId: "never-started", cursor: events[1]!.cursor }, alice))).rejects.toMatchObject({ code: 3 });
    await expect(chat.cancelCompletion({ completionId: "never-started" }, alice)).rejects.toMatchObject({ code: 5 });
  });

  it("rejects bad requests with invalid_argument", async () => {
    for (const request of [
      { messages: [] },
      { messages: [{ role: "robot", content: "hi" }] },
      { messages: prompt, maxTokens: 5000 },
      { messages: prompt, completionId: "bad id!" },
      { cursor: "abc" },
    ]) {
      await expect(collect(chat.complete(request, alice))).rejects.toMatchObject({ code: 3 });
    }
  });
});
