import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { GapReason } from "../../gen/rivulet/stream/v1/gap_pb.js";
import { redisServerAvailable, startPrivateRedis, until, type PrivateRedis } from "../broker/test-redis.js";
import { bearer, clientFor, take, transportFor } from "../helpers/clients.js";
import { startInstances, type Instances } from "./instances.js";
import { roomEventOf, startRoomSubscriber, subscriberKinds, type RoomEvent, type RoomSubscriber } from "./room-subscriber.js";

const summary = (events: readonly RoomEvent[]) => events.map((event) => (event.kind === "message" ? event.text : `gap:${GapReason[event.reason]}`));
const readiness = async (url: string) => (await fetch(`${url}/readyz`)).status;

// Wiping and restarting Redis would break every other suite on the shared
// server, so this suite runs its own redis-server (no persistence) on a free port.
describe.runIf(redisServerAvailable())("Redis loses its data, then goes away and comes back empty", () => {
  let redis: PrivateRedis;
  let instances: Instances;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    instances = await startInstances(2, { redisUrl: redis.url });
  }, 60_000);
  afterAll(async () => {
    await instances?.close();
    await redis?.stop();
  });

  it("tells live and resuming subscribers with a gap, fails fast while Redis is down, and recovers by itself", async () => {
    const [a, b] = instances.list;
    const token = await instances.token("alice");
    const chat = clientFor(ChatService, transportFor(a!.url, "connect", "2"));
    const room = "wiped";
    const pids = instances.list.map((instance) => instance.process.pid);
    const first = (await chat.send({ room, text: "before-1" }, bearer(token))).message!;
    await chat.send({ room, text: "before-2" }, bearer(token));

    // Live subscribers on B that, when cut off, reconnect to A or B with their cursor.
    const urls = instances.list.map((instance) => instance.url);
    const subscribers: { name: string; subscriber: RoomSubscriber }[] = subscriberKinds.map((kind) => ({
      name: kind.name,
      subscriber: startRoomSubscriber({
        kind,
        room,
        token,
        cursor: first.cursor,
        pick: (previous) => (previous === undefined ? b!.url : urls[(urls.indexOf(previous) + 1) % urls.length]),
      }),
    }));
    const allUntil = (count: number, what: string) =>
      Promise.all(subscribers.map(({ subscriber }) => subscriber.until((events) => events.length >= count, what)));
    try {
      await allUntil(1, "before-2");

      // 1. The data is wiped (FLUSHALL) under running instances: the next publish starts a new epoch.
      const admin = new Redis(redis.url);
      await admin.flushall();
      admin.disconnect();
      const afterFlush = (await chat.send({ room, text: "after-flush" }, bearer(token))).message!;
      await allUntil(3, "the gap and after-flush");
      const resumedAfterFlush = await take(chat.subscribe({ room, cursor: first.cursor }, bearer(token)), 2);
      expect(summary(resumedAfterFlush.map(roomEventOf))).toEqual(["gap:EPOCH_CHANGED", "after-flush"]);

      // 2. Redis goes away: not ready, publishes fail with unavailable, live streams end with a retryable error.
      await redis.stop();
      for (const url of urls) await until(async () => (await readiness(url)) === 503, `${url}/readyz to fail`);
      const refused = await chat.send({ room, text: "refused" }, bearer(token)).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ConnectError);
      expect((refused as ConnectError).code).toBe(Code.Unavailable);
      await Promise.all(subscribers.map(({ subscriber }) => subscriber.until(() => subscriber.errors.length >= 1, "the stream to fail")));

      // 3. Redis comes back empty: the instances reconnect by themselves, and resumed streams say gap.
      await redis.start();
      for (const url of urls) await until(async () => (await readiness(url)) === 200, `${url}/readyz to recover`);
      await allUntil(4, "the gap of the lost epoch");
      await chat.send({ room, text: "after-restart" }, bearer(token));
      await allUntil(5, "after-restart");

      for (const { name, subscriber } of subscribers) {
        expect(summary(subscriber.events), name).toEqual(["before-2", "gap:EPOCH_CHANGED", "after-flush", "gap:EPOCH_CHANGED", "after-restart"]);
        expect(subscriber.messages()[1]!.cursor, name).toBe(afterFlush.cursor);
        expect(new Set(subscriber.errors.map((error) => error.code)), name).toEqual(new Set([Code.Unavailable]));
      }
      // Each instance said so in its log, once each way.
      for (const instance of instances.list) {
        const said = instance.logs.map((line) => String(line.msg)).filter((msg) => msg.startsWith("Redis "));
        expect(said, instance.name).toEqual([
          "Redis reachable: the broker is ready",
          "Redis broker started",
          "Redis unreachable: not ready, publishes answer unavailable; reconnecting",
          "Redis reachable: the broker is ready",
        ]);
      }
      // Nobody restarted Rivulet.
      expect(instances.list.map((instance) => instance.alive() && instance.process.pid)).toEqual(pids);
    } finally {
      await Promise.all(subscribers.map(({ subscriber }) => subscriber.stop()));
    }
  });
});
