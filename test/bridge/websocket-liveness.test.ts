import { describe, expect, it } from "vitest";
import { createWebSocketLiveness } from "../../src/bridge/websocket/liveness.js";

describe("createWebSocketLiveness", () => {
  it("pings while the peer answers, and terminates a silent one at the second round", () => {
    const liveness = createWebSocketLiveness(1000);
    expect(liveness.round(0, false)).toBe("ping");
    liveness.heard();
    expect(liveness.round(100, false)).toBe("ping");
    expect(liveness.round(200, false)).toBe("terminate");
  });

  it("waits for a peer that frames keep going to, then calls it too slow at the stall limit from its unanswered ping", () => {
    const liveness = createWebSocketLiveness(1000);
    expect(liveness.round(0, true)).toBe("ping");
    expect(liveness.round(100, true)).toBe("wait");
    expect(liveness.round(999, true)).toBe("wait");
    expect(liveness.round(1000, true)).toBe("too-slow");
  });

  it("starts over when the peer is heard from again (a frame, a pong or a drained socket)", () => {
    const liveness = createWebSocketLiveness(1000);
    liveness.round(0, true);
    liveness.round(900, true);
    liveness.heard();
    expect(liveness.round(1000, true)).toBe("ping");
    expect(liveness.round(1900, true)).toBe("wait");
    // Nothing sent to it any more and still no answer: gone.
    expect(liveness.round(2000, false)).toBe("terminate");
  });
});
