import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CountResponseSchema, CounterService } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { createMethodRegistry } from "../../src/call/method-registry.js";
import { messageEventOf } from "../../src/bridge/sse/message-event.js";
import { counterService } from "../helpers/counter-service.js";

describe("SSE message events", () => {
  const methods = createMethodRegistry([counterService()], [], new AbortController().signal);
  const count = methods.get(`${CounterService.typeName}/Count`)!;

  it("writes the cursor as the id and proto3 JSON as the data", () => {
    expect(messageEventOf(count, create(CountResponseSchema, { value: 7, cursor: "7" })).toString()).toBe('id: 7\ndata: {"value":7,"cursor":"7"}\n\n');
    // No cursor, no id: the client's last event id stays as it was.
    expect(messageEventOf(count, create(CountResponseSchema, { value: 8 })).toString()).toBe('data: {"value":8}\n\n');
  });

  it("encodes a message object once, however many subscribers it is written to", () => {
    const message = create(CountResponseSchema, { value: 1, cursor: "1" });
    const first = messageEventOf(count, message);
    expect(messageEventOf(count, message)).toBe(first); // the very same Buffer
    expect(messageEventOf(count, create(CountResponseSchema, { value: 1, cursor: "1" }))).not.toBe(first);
  });
});
