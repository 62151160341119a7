import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  ChatService,
  CompleteRequestSchema,
  CompleteResponseSchema,
  SendRequestSchema,
  SubscribeRequestSchema,
  SubscribeResponseSchema,
} from "../../gen/rivulet/chat/v1/chat_pb.js";
import { ProgressService } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { CounterService, EchoRequestSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { ensureIdempotencyKey, isResumable, resumeRequest } from "../../src/client/websocket-resume.js";

describe("resuming a stream", () => {
  it("knows resumable methods from the schema", () => {
    expect(isResumable(ChatService.method.subscribe)).toBe(true);
    expect(isResumable(ChatService.method.complete)).toBe(true);
    expect(isResumable(CounterService.method.count)).toBe(true);
    expect(isResumable(ProgressService.method.watch)).toBe(true);
    expect(isResumable(ChatService.method.send)).toBe(false);
  });

  it("sets the cursor of the last response, keeping the rest of the request", () => {
    const request = create(SubscribeRequestSchema, { room: "r", history: 5 });
    const last = create(SubscribeResponseSchema, { cursor: "c42" });
    const resumed = resumeRequest(SubscribeRequestSchema, SubscribeResponseSchema, request, last);
    expect(resumed).toMatchObject({ room: "r", history: 5, cursor: "c42" });
    expect(request.cursor).toBe(""); // the original is not changed
    expect(resumeRequest(SubscribeRequestSchema, SubscribeResponseSchema, request, undefined)).toBe(request);
  });

  it("fills request fields the response names, so a completion resumes instead of starting again", () => {
    const request = create(CompleteRequestSchema, { messages: [{ role: "user", content: "hi" }] });
    const last = create(CompleteResponseSchema, { completionId: "cmp-1", cursor: "c7", delta: "tok" });
    expect(resumeRequest(CompleteRequestSchema, CompleteResponseSchema, request, last)).toMatchObject({ completionId: "cmp-1", cursor: "c7" });
    // A field the caller set is kept.
    const chosen = create(CompleteRequestSchema, { completionId: "mine" });
    expect(resumeRequest(CompleteRequestSchema, CompleteResponseSchema, chosen, last)).toMatchObject({ completionId: "mine", cursor: "c7" });
  });
});

describe("idempotency keys", () => {
  it("are added to writes that have the field and left empty", () => {
    const send = create(SendRequestSchema, { room: "r", text: "t" });
    expect(ensureIdempotencyKey(SendRequestSchema, send)).toBe(true);
    expect(send.idempotencyKey).toMatch(/^[0-9a-f]{32}$/);
    const keyed = create(SendRequestSchema, { idempotencyKey: "k1" });
    expect(ensureIdempotencyKey(SendRequestSchema, keyed)).toBe(true);
    expect(keyed.idempotencyKey).toBe("k1");
    expect(ensureIdempotencyKey(EchoRequestSchema, create(EchoRequestSchema, { text: "x" }))).toBe(false);
  });
});
