import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Broker } from "../../src/broker/broker.js";
import { createMemoryBroker } from "../../src/broker/memory.js";
import { presenceChanges } from "../../src/services/presence-changes.js";

/**
 * The presence stream on a real (memory) broker, pulled by hand: a consumer
 * that does not ask for the next response is a slow one, which end-to-end
 * tests cannot arrange (transports read ahead into their buffers).
 */
describe("presenceChanges", () => {
  let broker: Broker;
  let abort: AbortController;
  beforeEach(() => {
    broker = createMemoryBroker();
    abort = new AbortController();
  });
  afterEach(async () => {
    abort.abort();
    await broker.close();
  });

  it("starts with every member sorted, then yields who joined and left", async () => {
    const leaveCarol = broker.enterPresence("room", "carol");
    const leaveAlice = broker.enterPresence("room", "alice");
    const stream = presenceChanges(broker, "room", abort.signal);
    expect((await stream.next()).value).toEqual({ members: ["alice", "carol"], joined: [], left: [] });
    const next = stream.next();
    const leaveBob = broker.enterPresence("room", "bob");
    expect((await next).value).toEqual({ members: [], joined: ["bob"], left: [] });
    leaveAlice();
    expect((await stream.next()).value).toEqual({ members: [], joined: [], left: ["alice"] });
    leaveBob();
    leaveCarol();
    await stream.return(undefined);
  });

  it("conflates for a consumer that does not read: the net change since its last response, nothing for a round trip", async () => {
    const leaveAlice = broker.enterPresence("room", "alice");
    const stream = presenceChanges(broker, "room", abort.signal);
    expect((await stream.next()).value).toEqual({ members: ["alice"], joined: [], left: [] });
    // While the consumer is away: bob comes and goes, carol and dave come, alice goes.
    const leaveBob = broker.enterPresence("room", "bob");
    const leaveCarol = broker.enterPresence("room", "carol");
    broker.enterPresence("room", "dave");
    leaveBob();
    leaveAlice();
    expect((await stream.next()).value).toEqual({ members: [], joined: ["carol", "dave"], left: ["alice"] });
    // Carol goes and comes back before the consumer reads: no news, so the next response is what follows.
    leaveCarol();
    const leaveCarolAgain = broker.enterPresence("room", "carol");
    const next = stream.next();
    leaveCarolAgain();
    expect((await next).value).toEqual({ members: [], joined: [], left: ["carol"] });
    await stream.return(undefined);
  });

  it("ends when the call's signal aborts while it waits for a change", async () => {
    const stream = presenceChanges(broker, "room", abort.signal);
    expect((await stream.next()).value).toEqual({ members: [], joined: [], left: [] });
    const next = stream.next();
    abort.abort();
    expect(await next).toEqual({ value: undefined, done: true });
  });
});
