import { create, toBinary } from "@bufbuild/protobuf";
import { createHandlerContext } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ChatService, SignalSchema, SubscribeResponseSchema, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import type { Entry } from "../../src/broker/broker.js";
import { createMemoryBroker } from "../../src/broker/memory.js";
import { createTopicHub } from "../../src/broker/topic-hub.js";
import { streamTopic } from "../../src/services/topic-stream.js";
import { streamPolicyOf } from "../../src/wire/stream-policy.js";

/**
 * streamTopic's ephemeral responses on the pull path (connect-node's handlers
 * pull the generator): delivered while the consumer waits in `next()`, dropped
 * while it does not, never ahead of what it pulls from the log, and stopped
 * however the stream ends. The sink path is covered end to end
 * (test/e2e/chat-signals.test.ts, over SSE and the WebSocket).
 */
describe("streamTopic: ephemeral responses on the pull path", () => {
  const text = (response: SubscribeResponse) => (response.event.case === "signal" ? `signal:${response.event.value.kind}` : "entry");

  function open(abort = new AbortController()) {
    const broker = createMemoryBroker();
    const method = ChatService.method.subscribe;
    const context = createHandlerContext({
      service: ChatService,
      method,
      protocolName: "test",
      requestMethod: "POST",
      url: "http://localhost/",
      requestSignal: abort.signal,
    });
    let listening = 0;
    const stream = streamTopic<SubscribeResponse>({
      hub: createTopicHub(broker),
      topic: "t",
      policy: streamPolicyOf(method),
      from: { last: 0 },
      bufferSize: 10,
      context,
      cache: new WeakMap<Entry, SubscribeResponse>(),
      toResponse: (_, cursor) => create(SubscribeResponseSchema, { cursor }),
      ephemeral(deliver) {
        listening++;
        const stop = broker.listenSignals("t", (data) =>
          deliver(create(SubscribeResponseSchema, { event: { case: "signal", value: { kind: new TextDecoder().decode(data) } } })),
        );
        return () => {
          listening--;
          stop();
        };
      },
    });
    const signal = (kind: string) => broker.signal("t", new TextEncoder().encode(kind));
    return { broker, stream, signal, listening: () => listening, abort };
  }

  it("delivers one while the consumer waits, drops those sent while it does not, and keeps the log's order", async () => {
    const { broker, stream, signal, listening } = open();
    const first = stream.next();
    // The generator runs up to its first wait when pulled: it listens from then on.
    expect(listening()).toBe(1);
    await signal("typing");
    expect(text((await first).value as SubscribeResponse)).toBe("signal:typing");
    // Not waiting now: this one is dropped, not held.
    await signal("dropped");
    const second = stream.next();
    await broker.publish("t", toBinary(SignalSchema, create(SignalSchema)));
    const entry = (await second).value as SubscribeResponse;
    expect(text(entry)).toBe("entry");
    expect(entry.cursor).not.toBe("");
    await stream.return(undefined);
    expect(listening()).toBe(0);
  });

  it("stops listening when the call is aborted", async () => {
    const { stream, listening, abort } = open();
    const first = stream.next();
    expect(listening()).toBe(1);
    abort.abort();
    await expect(first).rejects.toThrow();
    expect(listening()).toBe(0);
  });
});
