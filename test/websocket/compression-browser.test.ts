// Headless Chromium (Debian's chromium, driven by playwright-core) negotiates
// permessage-deflate with --ws-compression on, and its native WebSocket
// inflates the server's compressed frames (and the server inflates its own).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientFrameSchema, ServerFrameSchema } from "../../gen/rivulet/bridge/v1/bridge_pb.js";
import { EchoRequestSchema, EchoResponseSchema } from "../../gen/rivulet/testing/v1/counter_pb.js";
import { launchChromium } from "../helpers/browser.js";
import { counterService } from "../helpers/counter-service.js";
import { metricValue, startTestServer, type TestServer } from "../helpers/server.js";
import { hasChromium } from "../helpers/system.js";

const available = hasChromium();

/** What `exchange` saw: the negotiated extensions and the messages' bytes. */
interface Exchange {
  readonly extensions: string;
  readonly messages: number[][];
}

/** Runs in the page: opens a native WebSocket, sends `frames`, resolves with the first `count` messages. */
function exchange([url, frames, count]: readonly [string, readonly number[][], number]): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, "rivulet.v1");
    socket.binaryType = "arraybuffer";
    const messages: number[][] = [];
    socket.onopen = () => frames.forEach((frame) => socket.send(new Uint8Array(frame)));
    socket.onmessage = (event: MessageEvent<ArrayBuffer>) => {
      messages.push(Array.from(new Uint8Array(event.data)));
      if (messages.length === count) {
        resolve({ extensions: socket.extensions, messages });
        socket.close();
      }
    };
    socket.onclose = (event) => reject(new Error(`closed with ${event.code}`));
  });
}

describe.skipIf(!available)("WebSocket permessage-deflate in headless Chromium", () => {
  let server: TestServer;
  let browser: Browser;
  let tab: Page;
  beforeAll(async () => {
    server = await startTestServer({ config: { wsCompression: true }, extraServices: () => [counterService()] });
    browser = await launchChromium();
    tab = await browser.newPage();
    // A document the server itself serves: Chromium lets only a page from a local origin open a socket to loopback.
    await tab.goto(`${server.url}/healthz`);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it("negotiates the extension and receives a compressed message intact", async () => {
    const text = "a compressible sentence, said again and again. ".repeat(100);
    const request = toBinary(EchoRequestSchema, create(EchoRequestSchema, { text }));
    const call = toBinary(
      ClientFrameSchema,
      create(ClientFrameSchema, { kind: { case: "call", value: { id: 1, method: "rivulet.testing.v1.CounterService/Echo", request } } }),
    );
    const url = `${server.url.replace(/^http/, "ws")}/ws?access_token=${await server.token("alice")}`;
    const before = await metricValue(server.url, "rivulet_websocket_deflated_messages_total");

    const result = await tab.evaluate(exchange, [url, [Array.from(call)], 2] as [string, number[][], number]);

    expect(result.extensions).toMatch(/^permessage-deflate;.*\bserver_no_context_takeover\b/);
    const [message, end] = result.messages.map((bytes) => fromBinary(ServerFrameSchema, Uint8Array.from(bytes)));
    expect(message!.kind.case).toBe("message");
    expect(fromBinary(EchoResponseSchema, (message!.kind.value as { payload: Uint8Array }).payload).text).toBe(text);
    expect(end!.kind).toMatchObject({ case: "end", value: { id: 1 } });
    expect((end!.kind.value as { error?: unknown }).error).toBeUndefined();
    // The response (above the 1 KiB threshold) was deflated for this socket; the small end frame was not.
    expect(await metricValue(server.url, "rivulet_websocket_deflated_messages_total")).toBe(before + 1);
  });
});
