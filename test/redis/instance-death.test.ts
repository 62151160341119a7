import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type ChatMessage } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { decodeCursor } from "../../src/broker/cursor.js";
import { roomTopic } from "../../src/services/chat.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { sharedBrokers, startInstances, type Instance, type Instances } from "./instances.js";
import { startRoomSubscriber, subscriberKinds, type RoomSubscriber } from "./room-subscriber.js";

for (const broker of sharedBrokers()) {
  describe.runIf(broker.available)(`an instance killed mid-stream (${broker.name})`, () => {
    let instances: Instances;
    beforeAll(async () => {
      instances = await startInstances(3, { redisUrl: broker.url });
    }, 60_000);
    afterAll(() => instances?.close());

    it("loses nothing: clients resume on another instance and end with every published message exactly once", async () => {
      const [a, b, c] = instances.list as [Instance, Instance, Instance];
      const token = await instances.token("alice");
      const room = "failover";
      const clients = new Map(instances.list.map((instance) => [instance.url, clientFor(ChatService, transportFor(instance.url, "connect", "2"))]));
      const alive = () => instances.list.filter((instance) => instance.alive());

      /** Sends one message as a careful client does: on failure, the same idempotency key on another instance. */
      let attempts = 0;
      let failedAttempts = 0;
      async function send(text: string, key: string, turn: number): Promise<ChatMessage> {
        for (let retry = 0; retry < 10; retry++) {
          const candidates = alive();
          const instance = candidates[(turn + retry) % candidates.length]!;
          attempts++;
          try {
            return (await clients.get(instance.url)!.send({ room, text, idempotencyKey: key }, bearer(token))).message!;
          } catch (error) {
            failedAttempts++;
            if (!(error instanceof ConnectError)) throw error;
          }
        }
        throw new Error(`could not send ${text}`);
      }

      const start = await send("start", "start", 0);
      /** Reconnects to the next live instance other than the one that failed. */
      const pick = (home: Instance) => (previous: string | undefined) => {
        if (previous === undefined) return home.url;
        const others = alive().filter((instance) => instance.url !== previous);
        return (others[0] ?? alive()[0])?.url;
      };
      const subscribers: { name: string; home: Instance; subscriber: RoomSubscriber }[] = [];
      for (const kind of subscriberKinds) {
        for (const home of [b, c]) {
          subscribers.push({
            name: `${kind.name} from ${home.name}`,
            home,
            subscriber: startRoomSubscriber({ kind, room, token, cursor: start.cursor, pick: pick(home) }),
          });
        }
      }

      const total = 300;
      const published: ChatMessage[] = [];
      let killed: Promise<void> | undefined;
      try {
        for (let i = 1; i <= total; i++) {
          if (i === 101) {
            // Every subscriber is streaming live from its instance: kill C now, without waiting for it to die.
            await Promise.all(subscribers.map(({ subscriber }) => subscriber.until((events) => events.length >= 100, "100 messages")));
            killed = c.kill();
          }
          published.push(await send(`m${i}`, `key-${i}`, i));
        }
        await killed;
        await Promise.all(subscribers.map(({ subscriber }) => subscriber.until((events) => events.length >= total, `${total} messages`, 30_000)));
      } finally {
        await Promise.all(subscribers.map(({ subscriber }) => subscriber.stop()));
      }

      // What was published: offsets 2..301 of one epoch, one message per send, none lost.
      const topic = roomTopic(room);
      const positions = published.map((message) => decodeCursor(topic, message.cursor));
      const first = decodeCursor(topic, start.cursor);
      expect(positions.map((position) => position.epoch)).toEqual(positions.map(() => first.epoch));
      expect(positions.map((position) => position.offset)).toEqual(Array.from({ length: total }, (_, i) => first.offset + 1 + i));
      expect(published.map((message) => message.text)).toEqual(Array.from({ length: total }, (_, i) => `m${i + 1}`));

      for (const { name, home, subscriber } of subscribers) {
        // Exactly the published (epoch, offset) sequence: no loss, no duplicate, no gap.
        const delivered = subscriber.events.map((event) => (event.kind === "message" ? decodeCursor(topic, event.cursor) : { epoch: "gap", offset: -1 }));
        expect(delivered, name).toEqual(positions);
        expect(
          subscriber.messages().map((event) => event.id),
          name,
        ).toEqual(published.map((message) => message.id));
        if (home === c) {
          expect(subscriber.errors.length, `${name} saw its instance die`).toBeGreaterThanOrEqual(1);
          expect(subscriber.connections.at(-1), name).not.toBe(c.url);
        } else {
          expect(subscriber.errors, name).toEqual([]);
        }
      }
      expect(a.alive() && b.alive() && !c.alive()).toBe(true);
      const seen = new Set(subscribers.flatMap(({ subscriber }) => subscriber.errors.map((error) => error.message)));
      console.info(
        `instance death: ${total} messages, ${attempts} send attempts (${failedAttempts} failed and retried elsewhere); subscribers on C saw: ${[...seen].join(" | ")}`,
      );
    });
  });
}
