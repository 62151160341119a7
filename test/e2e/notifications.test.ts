import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotificationService } from "../../gen/rivulet/notify/v1/notify_pb.js";
import { bearer, clientFor, take, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

describe("NotificationService: each user reads only their own", () => {
  let server: TestServer;
  let notify: ReturnType<typeof clientFor<typeof NotificationService>>;
  beforeAll(async () => {
    server = await startTestServer();
    notify = clientFor(NotificationService, transportFor(server.url, "connect", "1.1"));
  });
  afterAll(() => server.close());

  it("delivers user A's notifications to A only, never to B", async () => {
    const publisher = bearer(await server.token("billing", ["publisher"]));
    const alice = bearer(await server.token("alice"));
    const bob = bearer(await server.token("bob"));
    await notify.publish({ userId: "alice", kind: "ready", title: "alice-0" }, publisher);
    await notify.publish({ userId: "bob", kind: "ready", title: "bob-0" }, publisher);
    // Each subscription's first event is its own history: then both are live.
    const aliceStream = notify.subscribe({ history: 1 }, alice)[Symbol.asyncIterator]();
    const bobStream = notify.subscribe({ history: 1 }, bob)[Symbol.asyncIterator]();
    const title = async (it: typeof aliceStream) => {
      const { value } = await it.next();
      return value?.event.case === "notification" ? `${value.event.value.userId}:${value.event.value.title}` : "?";
    };
    expect(await title(aliceStream)).toBe("alice:alice-0");
    expect(await title(bobStream)).toBe("bob:bob-0");
    for (let i = 1; i <= 3; i++) {
      await notify.publish({ userId: "alice", kind: "ready", title: `alice-${i}`, data: { n: String(i) } }, publisher);
      await notify.publish({ userId: "bob", kind: "ready", title: `bob-${i}` }, publisher);
    }
    expect([await title(aliceStream), await title(aliceStream), await title(aliceStream)]).toEqual(["alice:alice-1", "alice:alice-2", "alice:alice-3"]);
    expect([await title(bobStream), await title(bobStream), await title(bobStream)]).toEqual(["bob:bob-1", "bob:bob-2", "bob:bob-3"]);
    await aliceStream.return?.();
    await bobStream.return?.();
  });

  it("takes the user from the credentials: a cursor of another user's log is refused", async () => {
    const publisher = bearer(await server.token("billing", ["publisher"]));
    const { notification } = await notify.publish({ userId: "carol", kind: "k", title: "secret" }, publisher);
    const mallory = bearer(await server.token("mallory"));
    await expect(take(notify.subscribe({ cursor: notification!.cursor }, mallory), 1)).rejects.toMatchObject({ code: 3 });
  });

  it("needs the publisher role to publish", async () => {
    const alice = bearer(await server.token("alice"));
    await expect(notify.publish({ userId: "bob", kind: "spam", title: "hi" }, alice)).rejects.toMatchObject({ code: 7 });
  });

  it("deduplicates publishes by idempotency key", async () => {
    const publisher = bearer(await server.token("billing", ["publisher"]));
    const first = await notify.publish({ userId: "dave", kind: "k", title: "once", idempotencyKey: "n-1" }, publisher);
    const again = await notify.publish({ userId: "dave", kind: "k", title: "once", idempotencyKey: "n-1" }, publisher);
    expect(again.notification).toEqual(first.notification);
    const dave = bearer(await server.token("dave"));
    await notify.publish({ userId: "dave", kind: "k", title: "marker" }, publisher);
    const history = await take(notify.subscribe({ history: 10 }, dave), 2);
    expect(history.map((h) => (h.event.case === "notification" ? h.event.value.title : ""))).toEqual(["once", "marker"]);
  });
});
