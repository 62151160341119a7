import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type WatchPresenceResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { sharedBrokers, startInstances, type Instance, type Instances } from "./instances.js";

const presenceTtlMs = 2000;

/**
 * Presence across real processes over Redis: a user subscribed on instance B
 * is present for a watcher on instance A, and stops being present within
 * `--presence-ttl` when B is killed with SIGKILL (no shutdown, no ZREM, no
 * announcement: only the entries' expiry tells).
 */
for (const broker of sharedBrokers()) {
  describe.runIf(broker.available)(`presence when an instance is killed (${broker.name})`, () => {
    let instances: Instances;
    beforeAll(async () => {
      instances = await startInstances(2, { redisUrl: broker.url, args: ["--presence-ttl", "2s"] });
    }, 60_000);
    afterAll(() => instances?.close());

    it("a killed instance's users leave a watcher on another instance within the presence TTL", async () => {
      const [a, b] = instances.list as [Instance, Instance];
      const room = "presence-sigkill";
      const alice = bearer(await instances.token("alice"));
      const bob = bearer(await instances.token("bob"));
      const carol = bearer(await instances.token("carol"));
      const onA = clientFor(ChatService, transportFor(a.url, "connect", "2"));
      const onB = clientFor(ChatService, transportFor(b.url, "connect", "2"));
      await onA.send({ room, text: "seed" }, alice);
      const abort = new AbortController();
      const carolsAbort = new AbortController();
      const watcher = onA.watchPresence({ room }, { ...alice, signal: abort.signal })[Symbol.asyncIterator]();
      const next = async () => (await watcher.next()).value as WatchPresenceResponse;
      let bobsTab: AsyncIterator<unknown> | undefined;
      let carolsTab: AsyncIterator<unknown> | undefined;
      try {
        expect((await next()).members).toEqual([]);
        // Bob's tab on B, carol's on A; each read up to the seed, so it is streaming.
        bobsTab = onB.subscribe({ room, history: 1 }, { ...bob, signal: abort.signal })[Symbol.asyncIterator]();
        carolsTab = onA.subscribe({ room, history: 1 }, { ...carol, signal: carolsAbort.signal })[Symbol.asyncIterator]();
        await bobsTab.next();
        await carolsTab.next();
        const joined: string[] = [];
        while (joined.length < 2) joined.push(...(await next()).joined);
        expect(joined.sort()).toEqual(["bob", "carol"]);

        const killed = Date.now();
        const left = next();
        await b.kill();
        // Bob's stream breaks with B; nobody tells Redis: his entry expires.
        await bobsTab.next().catch(() => undefined);
        const change = await left;
        expect(change.left).toEqual(["bob"]);
        expect(change.joined).toEqual([]);
        // The design bound is the TTL; the slack absorbs timers late on a loaded machine.
        expect(Date.now() - killed).toBeLessThan(presenceTtlMs * 2);
        // Carol, on the live instance, stays: the next change is her leaving when her tab closes.
        const after = next();
        carolsAbort.abort();
        expect(await after).toMatchObject({ members: [], joined: [], left: ["carol"] });
      } finally {
        abort.abort();
        carolsAbort.abort();
        await Promise.all([watcher, bobsTab, carolsTab].map((iterator) => iterator?.return?.().catch(() => undefined)));
      }
    });
  });
}
