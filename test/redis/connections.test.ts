import { setMaxListeners } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { countConnections } from "../broker/test-redis.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { sharedBrokers, startInstances, type Instances } from "./instances.js";

for (const broker of sharedBrokers()) {
  describe.runIf(broker.available)(`Redis connections per instance (${broker.name})`, () => {
    let instances: Instances;
    beforeAll(async () => {
      // One user holds all 1,000 streams here.
      instances = await startInstances(1, { redisUrl: broker.url, args: ["--streams-per-user", "2000"] });
    }, 60_000);
    afterAll(() => instances?.close());

    it("stay constant from 10 to 1,000 subscribers across 100 topics, and as topics come and go", async () => {
      const [instance] = instances.list;
      const name = `rivulet:${instance!.instanceId}`;
      const auth = bearer(await instances.token("alice"));
      // Several HTTP/2 sessions: the server allows 1,000 streams per session.
      const chats = [0, 1, 2, 3].map((i) => clientFor(ChatService, transportFor(instance!.url, i % 2 === 0 ? "connect" : "grpc", "2")));
      const rooms = Array.from({ length: 100 }, (_, i) => `room-${i}`);
      await Promise.all(rooms.map((room) => chats[0]!.send({ room, text: "seed" }, auth)));
      const abort = new AbortController();
      setMaxListeners(0, abort.signal); // one listener per stream
      const streams: AsyncIterator<SubscribeResponse>[] = [];
      /** Opens subscribers to rooms; each is live once it received the seed from history. */
      async function open(count: number): Promise<void> {
        const opened = Array.from({ length: count }, (_, i) => {
          const n = streams.length + i;
          return chats[n % chats.length]!.subscribe({ room: rooms[n % rooms.length]!, history: 1 }, { ...auth, signal: abort.signal })[Symbol.asyncIterator]();
        });
        streams.push(...opened);
        const first = await Promise.all(opened.map((stream) => stream.next()));
        expect(first.every((result) => !result.done && result.value.event.case === "message")).toBe(true);
      }

      try {
        const counts: Record<string, number> = { idle: await countConnections(name, broker.url) };
        await open(10);
        counts.subscribers10 = await countConnections(name, broker.url);
        await open(990);
        counts.subscribers1000 = await countConnections(name, broker.url);
        // Every topic is read live: one more message per room reaches all 1,000 subscribers.
        const received = Promise.all(streams.map((stream) => stream.next()));
        await Promise.all(rooms.map((room) => chats[1]!.send({ room, text: "live" }, auth)));
        const live = await received;
        expect(live.filter((result) => !result.done && result.value.event.case === "message" && result.value.event.value.text === "live")).toHaveLength(1000);
        counts.afterFanOut = await countConnections(name, broker.url);
        // Unsubscribing everything and subscribing to other topics opens nothing either.
        abort.abort();
        await Promise.all(streams.splice(0).map((stream) => stream.return?.().catch(() => undefined)));
        const again = new AbortController();
        const others = await Promise.all(
          rooms.slice(0, 10).map(async (room) => {
            await chats[2]!.send({ room: `${room}-other`, text: "seed" }, auth);
            const stream = chats[3]!.subscribe({ room: `${room}-other`, history: 1 }, { ...auth, signal: again.signal })[Symbol.asyncIterator]();
            await stream.next();
            return stream;
          }),
        );
        counts.resubscribed = await countConnections(name, broker.url);
        again.abort();
        await Promise.all(others.map((stream) => stream.return?.().catch(() => undefined)));
        console.info(`Redis connections of one instance: ${JSON.stringify(counts)}`);
        // One Redis: commands, the blocking reader, the subscriber. A cluster of 3 masters: the
        // cluster client's connection to each master and the subscriber (see notified-reader.ts).
        expect(counts.subscribers10).toBeLessThanOrEqual(4);
        const constant = counts.subscribers10;
        expect(counts).toEqual({ idle: constant, subscribers10: constant, subscribers1000: constant, afterFanOut: constant, resubscribed: constant });
      } finally {
        abort.abort();
        await Promise.all(streams.map((stream) => stream.return?.().catch(() => undefined)));
      }
    });
  });
}
