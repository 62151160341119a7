import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/rivulet/admin/v1/admin_pb.js";
import { ChatService, type SubscribeResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { hashApiKey } from "../../src/auth/api-keys.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { sharedBrokers, startInstances, type Instance, type Instances } from "./instances.js";

const key = "rvk_" + "r".repeat(43);

/**
 * The server API across real processes over Redis: Disconnect on instance A
 * ends the user's streams on A and on B (each instance ends its own, B on
 * hearing A's signal), and no other user's; Info on either lists both
 * instances with their live topics.
 */
for (const broker of sharedBrokers()) {
  describe.runIf(broker.available)(`AdminService across instances (${broker.name})`, () => {
    let instances: Instances;
    beforeAll(async () => {
      const file = join(testTempDir("api-keys-"), "keys");
      writeFileSync(file, `${hashApiKey(key)} ops-backend\n`);
      instances = await startInstances(2, { redisUrl: broker.url, args: ["--api-keys-file", file] });
    }, 60_000);
    afterAll(() => instances?.close());

    it("Disconnect on one instance ends the user's streams on both with permission_denied; other users' stay open", async () => {
      const [a, b] = instances.list as [Instance, Instance];
      const room = "admin-disconnect";
      const onA = clientFor(ChatService, transportFor(a.url, "connect", "2"));
      const onB = clientFor(ChatService, transportFor(b.url, "grpc", "2"));
      const seed = (await onA.send({ room, text: "seed" }, bearer(await instances.token("writer")))).message!;
      await onA.send({ room, text: "first" }, bearer(await instances.token("writer")));
      const abort = new AbortController();
      const open = async (client: typeof onA, user: string) => {
        const auth = bearer(await instances.token(user));
        const stream = client.subscribe({ room, cursor: seed.cursor }, { ...auth, signal: abort.signal })[Symbol.asyncIterator]();
        // Its first response ("first", after the seed): the stream is open.
        expect(((await stream.next()).value as SubscribeResponse).event.value).toMatchObject({ text: "first" });
        return stream;
      };
      try {
        const daveOnA = await open(onA, "dave");
        const daveOnB = await open(onB, "dave");
        const erinOnA = await open(onA, "erin");
        const erinOnB = await open(onB, "erin");
        const ended = [daveOnA.next(), daveOnB.next()].map((next) =>
          next.then(
            () => undefined,
            (error: unknown) => ({ code: ConnectError.from(error).code, message: ConnectError.from(error).rawMessage }),
          ),
        );
        const erinNext = [erinOnA.next(), erinOnB.next()];

        const admin = clientFor(AdminService, transportFor(a.url, "connect", "1.1"));
        const { endedHere } = await admin.disconnect({ userId: "dave" }, bearer(key));
        expect(endedHere).toBe(1);
        expect(await Promise.all(ended)).toEqual([
          { code: Code.PermissionDenied, message: "disconnected by the server API" },
          { code: Code.PermissionDenied, message: "disconnected by the server API" },
        ]);

        // Erin's streams on both instances still get the next message.
        const { message } = await admin.publishMessage({ room, author: "bot", text: "after", idempotencyKey: "" }, bearer(key));
        for (const next of erinNext) expect(((await next).value as SubscribeResponse).event.value).toEqual(message);

        // Info from B: both instances, each with the room's feed (erin's stream there).
        const info = await clientFor(AdminService, transportFor(b.url, "grpc-web", "2")).info({}, bearer(key));
        expect(info.instances.map((instance) => instance.id)).toEqual([a.instanceId, b.instanceId].sort());
        for (const instance of info.instances) expect(instance.topics).toContain(`chat.room/${room}`);
        expect(a.logs).toContainEqual(expect.objectContaining({ msg: "server API call", apiKey: "ops-backend", method: "Disconnect" }));
        expect(JSON.stringify([...a.logs, ...b.logs])).not.toContain(key);
      } finally {
        abort.abort();
      }
    });
  });
}
