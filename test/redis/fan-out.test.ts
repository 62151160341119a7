import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { sharedBrokers, startInstances, type Instances } from "./instances.js";
import { startRoomSubscriber, subscriberKinds, type RoomSubscriber } from "./room-subscriber.js";

for (const broker of sharedBrokers()) {
  describe.runIf(broker.available)(`three instances sharing ${broker.name}`, () => {
    let instances: Instances;
    beforeAll(async () => {
      instances = await startInstances(3, { redisUrl: broker.url });
    }, 60_000);
    afterAll(() => instances?.close());

    it("delivers every message published on A, in order, to subscribers on B and C over every transport", async () => {
      const [a, b, c] = instances.list;
      const token = await instances.token("alice");
      const chat = clientFor(ChatService, transportFor(a!.url, "connect", "2"));
      const room = "fan-out";
      await chat.send({ room, text: "hello" }, bearer(token));

      const subscribers: { name: string; subscriber: RoomSubscriber }[] = [];
      for (const kind of subscriberKinds) {
        for (const instance of [b!, c!]) {
          subscribers.push({
            name: `${kind.name} on ${instance.name}`,
            subscriber: startRoomSubscriber({ kind, room, token, history: 1, pick: (previous) => (previous ? undefined : instance.url) }),
          });
        }
      }
      try {
        // Each stream is live once it delivered the history message.
        await Promise.all(subscribers.map(({ subscriber }) => subscriber.until((events) => events.length >= 1, "the history message")));
        const texts = Array.from({ length: 100 }, (_, i) => `m${i + 1}`);
        const sent = [];
        for (const text of texts) sent.push((await chat.send({ room, text }, bearer(token))).message!);
        await Promise.all(subscribers.map(({ subscriber }) => subscriber.until((events) => events.length >= 101, "100 live messages")));
        for (const { name, subscriber } of subscribers) {
          expect(subscriber.errors, name).toEqual([]);
          expect(
            subscriber.events.map((event) => (event.kind === "message" ? event.text : "gap")),
            name,
          ).toEqual(["hello", ...texts]);
          expect(
            subscriber
              .messages()
              .slice(1)
              .map((event) => [event.id, event.cursor]),
            name,
          ).toEqual(sent.map((m) => [m.id, m.cursor]));
        }
      } finally {
        await Promise.all(subscribers.map(({ subscriber }) => subscriber.stop()));
      }
    });
  });
}
