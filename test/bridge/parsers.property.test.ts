// Property-based tests (fast-check) of the code that reads untrusted input:
// the WebSocket frame decoder, the SSE request parser, and the SSE client's
// event-stream parser. Arbitrary input never crashes or hangs them: each
// answers with its documented outcome.
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClientFrameSchema } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { createMethodRegistry } from "../../src/call/method-registry.js";
import type { HttpRequest } from "../../src/http/mount.js";
import { parseSseRequest } from "../../src/bridge/sse/request.js";
import { decodeClientFrame, WebSocketFrameError } from "../../src/bridge/websocket/frames.js";
import { createSseParser, type ParsedSseEvent } from "../../src/wire/sse-parser.js";
import { counterService } from "../helpers/counter-service.js";

describe("decodeClientFrame", () => {
  it("returns a frame or throws WebSocketFrameError with close code 1007, for any bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        try {
          decodeClientFrame(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(WebSocketFrameError);
          expect((error as WebSocketFrameError).closeCode).toBe(1007);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it("reads back every call frame it is given", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 32 - 1 }),
        fc.string({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 200 }),
        // Header names as HTTP allows them (protobuf-es maps are plain objects: a "__proto__" key is not a header).
        fc.dictionary(fc.stringMatching(/^[a-z0-9-]{1,20}$/), fc.string({ maxLength: 40 }), { maxKeys: 5 }),
        (id, method, request, headers) => {
          const bytes = toBinary(ClientFrameSchema, create(ClientFrameSchema, { kind: { case: "call", value: { id, method, request, headers } } }));
          const frame = decodeClientFrame(bytes);
          expect(frame.kind.case).toBe("call");
          expect(frame.kind.value).toMatchObject({ id, method, request, headers });
        },
      ),
    );
  });
});

describe("parseSseRequest", () => {
  // The parser reads only method descriptors and kinds: these implementations never run.
  const methods = createMethodRegistry(
    [counterService(), { service: ChatService, impl: { subscribe: async function* () {}, send: () => ({}) } }],
    [],
    new AbortController().signal,
  );
  const statuses = new Set([400, 401, 404, 405, 429]);
  const paths = ["rivulet.chat.v1.ChatService/Subscribe", "rivulet.testing.v1.CounterService/Count", "rivulet.chat.v1.ChatService/Send", "nope"];
  const request = (method: string, headers: Record<string, string>): HttpRequest => ({ method, headers }) as unknown as HttpRequest;

  it("accepts or refuses with a Connect error and a 4xx status, for any query, Last-Event-ID and token", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...paths),
        fc.dictionary(fc.constantFrom("message", "encoding", "base64", "lastEventId", "access_token", "compression", "x"), fc.string({ maxLength: 120 }), {
          maxKeys: 5,
        }),
        fc.option(fc.string({ maxLength: 300 }), { nil: undefined }),
        fc.constantFrom("GET", "POST", "HEAD"),
        (path, query, lastEventId, verb) => {
          const url = new URL(`http://localhost/sse/${path}`);
          for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
          const headers: Record<string, string> = lastEventId === undefined ? {} : { "last-event-id": lastEventId };
          const result = parseSseRequest(request(verb, headers), url, methods, 4096);
          if ("status" in result) {
            expect(result.error).toBeInstanceOf(ConnectError);
            expect(statuses).toContain(result.status);
            expect(result.error.code).not.toBe(Code.Internal);
          } else {
            expect(result.method.kind).toBe("server_streaming");
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("refuses any Last-Event-ID with CR, LF or NUL with 400", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), fc.constantFrom("\r", "\n", "\0"), fc.string({ maxLength: 40 }), (head, bad, tail) => {
        const url = new URL("http://localhost/sse/rivulet.chat.v1.ChatService/Subscribe?message=%7B%22room%22%3A%22r%22%7D");
        url.searchParams.set("lastEventId", `${head}${bad}${tail}`);
        const result = parseSseRequest(request("GET", {}), url, methods, 4096);
        expect("status" in result && result.status).toBe(400);
      }),
    );
  });
});

describe("the SSE client's event-stream parser", () => {
  const parse = (chunks: readonly string[]) => {
    const events: ParsedSseEvent[] = [];
    const parser = createSseParser({ event: (event) => events.push(event) });
    for (const chunk of chunks) parser.feed(chunk);
    return events;
  };
  /** Text made of the characters that matter to the format, and a few others. */
  const streamText = fc.string({
    unit: fc.constantFrom("d", "a", "t", ":", " ", "\n", "\r", "i", "e", "v", "n", "r", "y", "1", "\0", "é", "\uFEFF"),
    maxLength: 300,
  });

  it("never throws, and gives the same events however the text is split into chunks", () => {
    fc.assert(
      fc.property(streamText, fc.array(fc.nat(), { maxLength: 8 }), (text, cuts) => {
        const points = [...new Set(cuts.map((cut) => cut % (text.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...points].map((start, i) => text.slice(start, [...points, text.length][i]));
        expect(parse(chunks)).toEqual(parse([text]));
      }),
      { numRuns: 3000 },
    );
  });
});
