import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type CompleteResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { redisAvailable } from "../broker/test-redis.js";
import { bearer, clientFor, collect, transportFor } from "../helpers/clients.js";
import { startInstances, type Instances } from "./instances.js";

const prompt = [{ role: "user", content: "Tell a very long story" }];

describe.runIf(redisAvailable())("a completion whose instance dies", () => {
  let instances: Instances;
  beforeAll(async () => {
    instances = await startInstances(2, { args: ["--completion-stall", "2s"] });
  }, 60_000);
  afterAll(() => instances?.close());

  it("ends with finish_reason error for readers on other instances instead of leaving them waiting", async () => {
    const [a, b] = instances.list;
    const alice = bearer(await instances.token("alice"));
    const onA = clientFor(ChatService, transportFor(a!.url, "connect", "2"));
    const onB = clientFor(ChatService, transportFor(b!.url, "connect", "2"));
    // Generating on B (4096 tokens at 5 ms: far from done when B dies).
    const generating = onB.complete({ messages: prompt, maxTokens: 4096, completionId: "orphan-1" }, alice)[Symbol.asyncIterator]();
    const head: CompleteResponse[] = [];
    for (let i = 0; i < 3; i++) head.push((await generating.next()).value as CompleteResponse);
    // A reader on A follows it live.
    const reader = collect(onA.complete({ completionId: "orphan-1", cursor: head.at(-1)!.cursor }, alice));

    await b!.kill();
    await expect(generating.next()).rejects.toBeDefined(); // its own caller loses the connection
    const rest = await reader;
    const final = rest.at(-1)!;
    expect(final.finishReason).toBe("error");
    expect(rest.slice(0, -1).every((event) => event.delta !== "" && event.finishReason === "")).toBe(true);
    // Resuming later, anywhere, replays the same end; nothing follows it.
    const replay = await collect(onA.complete({ completionId: "orphan-1" }, alice));
    expect(replay.map((event) => event.cursor)).toEqual([...head, ...rest].map((event) => event.cursor));
    expect(await collect(onA.complete({ completionId: "orphan-1", cursor: final.cursor }, alice))).toEqual([]);
  });
});
