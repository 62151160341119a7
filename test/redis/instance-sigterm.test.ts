import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type ChatMessage } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { decodeCursor } from "../../src/broker/cursor.js";
import { roomTopic } from "../../src/services/chat.js";
import { redisAvailable } from "../broker/test-redis.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startInstances, type Instance, type Instances } from "./instances.js";
import { startRoomSubscriber, subscriberKinds, type RoomSubscriber, type SubscriberKind } from "./room-subscriber.js";

/** Subscribers in all; each ten are eight WebSocket, one gRPC and one SSE stream, as the load was mostly WebSocket. */
const subscriberCount = 240;
/** Messages published before the SIGTERM, and in all. */
const beforeStop = 100;
const total = 400;
/** Every resumed stream has every message within this long after the last publish. */
const catchUpBoundMs = 10_000;

describe.runIf(redisAvailable())("an instance stopped with SIGTERM under load", () => {
  let instances: Instances;
  beforeAll(async () => {
    instances = await startInstances(2, { args: ["--streams-per-user", "100000"] });
  }, 60_000);
  afterAll(() => instances?.close());

  it("hands its subscribers to the other instance, which catches every one of them up exactly once", async () => {
    const [a, b] = instances.list as [Instance, Instance];
    const token = await instances.token("alice");
    const room = "sigterm-under-load";
    // Published on B, the instance that stays: the publisher is not what this test is about.
    const chat = clientFor(ChatService, transportFor(b.url, "connect", "2"));
    const send = async (text: string) => (await chat.send({ room, text, idempotencyKey: text }, bearer(token))).message!;
    const start = await send("start");

    const kind = (name: string) => subscriberKinds.find((candidate) => candidate.name.startsWith(name))!;
    const mix: SubscriberKind[] = [kind("gRPC over"), kind("SSE"), ...Array.from({ length: 8 }, () => kind("WebSocket"))];
    const subscribers: { name: string; home: Instance; subscriber: RoomSubscriber }[] = [];
    try {
      for (let i = 0; i < subscriberCount; i++) {
        const home = i % 2 === 0 ? a : b;
        const subscriberKind = mix[i % mix.length]!;
        // A's subscribers resume on B with their cursor, as behind a load balancer.
        const pick = (previous: string | undefined) => (previous === undefined ? home.url : b.url);
        subscribers.push({
          name: `${subscriberKind.name} #${i} from ${home.name}`,
          home,
          subscriber: startRoomSubscriber({ kind: subscriberKind, room, token, cursor: start.cursor, pick }),
        });
      }
      const published: ChatMessage[] = [];
      let stopped: Promise<void> | undefined;
      for (let i = 1; i <= total; i++) {
        if (i === beforeStop + 1) {
          // Every stream is live on its instance: stop A and keep publishing while its subscribers move.
          await Promise.all(subscribers.map(({ subscriber }) => subscriber.until((events) => events.length >= beforeStop, `${beforeStop} messages`, 60_000)));
          stopped = a.terminate();
        }
        published.push(await send(`m${i}`));
      }
      await stopped;
      const lastPublishAt = Date.now();
      await Promise.all(subscribers.map(({ subscriber }) => subscriber.until((events) => events.length >= total, `${total} messages`, catchUpBoundMs)));
      const caughtUpMs = Date.now() - lastPublishAt;

      const topic = roomTopic(room);
      const positions = published.map((message) => decodeCursor(topic, message.cursor));
      for (const { name, home, subscriber } of subscribers) {
        // Exactly the published sequence: no loss, no repeat, no gap.
        const delivered = subscriber.events.map((event) => (event.kind === "message" ? decodeCursor(topic, event.cursor) : { epoch: "gap", offset: -1 }));
        expect(delivered, name).toEqual(positions);
        if (home === a) {
          expect(subscriber.errors.length, `${name} saw A stop`).toBeGreaterThanOrEqual(1);
          expect(subscriber.connections.at(-1), name).toBe(b.url);
        }
      }
      console.info(`SIGTERM under load: ${subscriberCount} subscribers, ${total} messages; the last stream caught up ${caughtUpMs} ms after the last publish`);
    } finally {
      await Promise.all(subscribers.map(({ subscriber }) => subscriber.stop()));
    }
  }, 180_000);
});
