import { fromJsonString } from "@bufbuild/protobuf";
import { EventSource } from "eventsource";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, SubscribeResponseSchema } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { GapReason } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { redisServerAvailable, startPrivateRedis, uniquePrefix, until, type PrivateRedis } from "../broker/test-redis.js";
import { eventSourceLog, launchChromium, openEventSource, openPageAt, type EventSourceLogEntry } from "../helpers/browser.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { ssePath } from "../helpers/sse.js";
import { hasChromium } from "../helpers/system.js";
import { roomEventOf } from "./room-subscriber.js";

const subscribe = "rivulet.chat.v1.ChatService/Subscribe";
/** How many `event: error` a client must see while Redis is down: the open stream's, then two reconnections'. */
const errorsDuringOutage = 3;

/** One line per event an EventSource dispatched, for both clients: what a test compares. */
function describeEvent(entry: EventSourceLogEntry): string {
  if (entry.type === "message") {
    const event = roomEventOf(fromJsonString(SubscribeResponseSchema, entry.data ?? ""));
    return event.kind === "message" ? `message ${event.text}` : `gap ${GapReason[event.reason]}`;
  }
  // The server's `event: error` carries Connect error JSON; the client's own (a closed connection, a refusal) has no data.
  if (entry.type === "error" && entry.data) return `error ${(JSON.parse(entry.data) as { code: string }).code}`;
  return `${entry.type} readyState=${entry.readyState}`;
}

const received = (log: readonly string[]) => log.filter((line) => line.startsWith("message ") || line.startsWith("gap "));
const unavailableErrors = (log: readonly string[]) => log.filter((line) => line === "error unavailable").length;
/** The `event: error`s the server sent (not the client's own connection errors). */
const serverErrors = (log: readonly string[]) => log.filter((line) => /^error [a-z_]+$/.test(line));
/** The client gave up for good (a refusal): no reconnection will ever come. */
const closedForGood = (log: readonly string[]) => log.includes("error readyState=2");

/**
 * A Redis outage is transient: a plain EventSource, which reconnects only
 * after a 200 `text/event-stream` that ends (any other status closes it for
 * good, WHATWG HTML §9.2.3), must keep reconnecting while Redis is down and
 * get, after Redis is back, what is published then: nothing lost, nothing
 * twice. The Redis is a private redis-server, stopped and started by the test.
 */
describe.runIf(redisServerAvailable())("SSE through a Redis outage", () => {
  let redis: PrivateRedis;
  let server: TestServer;
  let token: string;
  let chat: ReturnType<typeof clientFor<typeof ChatService>>;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    // A short retry: the clients come back every 50 ms during the outage.
    server = await startTestServer({ config: { broker: redis.url, redisPrefix: uniquePrefix(), sseRetryMs: 50 } });
    token = await server.token("alice");
    chat = clientFor(ChatService, transportFor(server.url, "connect", "1.1"));
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await redis?.stop();
  });

  const readiness = async () => (await fetch(`${server.url}/readyz`)).status;

  /**
   * Runs a client through an outage: it holds `before`; Redis stops until
   * `reconnecting` resolves (the client saw the outage and came back, or gave
   * up); Redis starts again, and `after` is published once the server is ready.
   */
  async function throughOutage(room: string, reconnecting: () => Promise<void>, afterwards: () => Promise<void>): Promise<void> {
    await redis.stop();
    await reconnecting();
    await redis.start();
    await until(async () => (await readiness()) === 200, "the server to reach Redis again");
    await chat.send({ room, text: "after" }, bearer(token));
    await afterwards();
  }

  it("the eventsource package keeps reconnecting while Redis is down, then gets what was published after", async () => {
    const room = "outage-eventsource";
    await chat.send({ room, text: "before" }, bearer(token));
    const log: string[] = [];
    const statuses: string[] = [];
    const waiters = new Set<() => void>();
    const record = (line: string) => {
      log.push(line);
      for (const waiter of [...waiters]) waiter();
    };
    const logged = (condition: (log: readonly string[]) => boolean) =>
      new Promise<void>((resolve) => {
        const check = () => condition(log) && (waiters.delete(check), resolve());
        waiters.add(check);
        check();
      });
    const source = new EventSource(`${server.url}${ssePath(subscribe, { room, history: 1 })}`, {
      fetch: async (input, init) => {
        const response = await fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${token}` } });
        statuses.push(`${response.status} ${response.headers.get("content-type") ?? ""}`);
        return response;
      },
    });
    for (const type of ["message", "error"]) {
      source.addEventListener(type, (event) => {
        const data = (event as MessageEvent<string | undefined>).data;
        record(describeEvent({ type, data: typeof data === "string" ? data : null, lastEventId: null, readyState: source.readyState }));
      });
    }
    try {
      await logged((lines) => received(lines).length === 1);
      const connectionsBefore = statuses.length;
      await throughOutage(
        room,
        async () => {
          await logged((lines) => unavailableErrors(lines) >= errorsDuringOutage || closedForGood(lines));
          // The wire of such an answer: the stream opens, says why, and ends.
          const raw = await fetch(`${server.url}${ssePath(subscribe, { room })}`, { headers: { authorization: `Bearer ${token}` } });
          expect(raw.status).toBe(200);
          expect(await raw.text()).toMatch(/^retry: 50\n\nevent: error\ndata: \{"code":"unavailable","message":"[^"]+"\}\n\n$/);
        },
        () => logged((lines) => received(lines).includes("message after") || closedForGood(lines)),
      );
      expect(closedForGood(log), log.join("\n")).toBe(false);
      // Every reconnection during the outage was answered as a stream that said why.
      expect(new Set(statuses.slice(connectionsBefore, connectionsBefore + errorsDuringOutage - 1))).toEqual(new Set(["200 text/event-stream; charset=utf-8"]));
      // Redis came back empty: a gap says the history is gone, then the new message, once.
      expect(received(log)).toEqual(["message before", "gap EPOCH_CHANGED", "message after"]);
      expect(new Set(serverErrors(log))).toEqual(new Set(["error unavailable"]));
      expect(source.readyState).toBe(EventSource.OPEN);
    } finally {
      source.close();
    }
  });

  describe.runIf(hasChromium())("in headless Chromium", () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchChromium();
    });
    afterAll(() => browser?.close());

    it("the native EventSource keeps reconnecting while Redis is down, then gets what was published after", async () => {
      const room = "outage-chromium";
      await chat.send({ room, text: "before" }, bearer(token));
      const page = await openPageAt(browser, server.url);
      const waitFor = (condition: string) => page.waitForFunction(condition, undefined, { timeout: 20_000 });
      // In the page: the server's unavailable errors, a close for good, and the last message's text.
      const unavailable = `window.log.filter((e) => e.type === "error" && e.data && JSON.parse(e.data).code === "unavailable").length`;
      const closed = `window.log.some((e) => e.readyState === 2)`;
      try {
        await openEventSource(page, ssePath(subscribe, { room, history: 1 }, { access_token: token }));
        await waitFor(`window.log.some((e) => e.type === "message")`);
        await throughOutage(
          room,
          () => waitFor(`${unavailable} >= ${errorsDuringOutage} || ${closed}`).then(() => undefined),
          () => waitFor(`window.log.some((e) => e.type === "message" && e.data.includes('"text":"after"')) || ${closed}`).then(() => undefined),
        );
        const log = (await eventSourceLog(page)).map(describeEvent);
        expect(closedForGood(log), log.join("\n")).toBe(false);
        expect(received(log)).toEqual(["message before", "gap EPOCH_CHANGED", "message after"]);
        expect(new Set(serverErrors(log))).toEqual(new Set(["error unavailable"]));
      } finally {
        await page.close();
      }
    });
  });
});
