// The registry the server API's Disconnect and withdrawn room access end
// streams through: one entry per open call, by user, gone when the call ends.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { OpenCalls } from "../../src/call/open-calls.js";

const denied = new ConnectError("disconnected", Code.PermissionDenied);

describe("OpenCalls", () => {
  it("ends every call of one user, and nobody else's", () => {
    const calls = new OpenCalls();
    const ended: string[] = [];
    const ender = (name: string) => ({ fail: (reason: ConnectError) => ended.push(`${name}: ${reason.rawMessage}`) });
    const [a1, a2, a3, b] = [calls.open("alice"), calls.open("alice"), calls.open("alice"), calls.open("bob")];
    a1.endVia(ender("a1"));
    a2.endVia(ender("a2"));
    a3.endVia(ender("a3"));
    b.endVia(ender("b"));
    a2.close();
    expect(calls.size).toBe(3);
    expect(calls.endUser("alice", denied)).toBe(2);
    expect(ended).toEqual(["a1: disconnected", "a3: disconnected"]);
    expect(calls.endUser("carol", denied)).toBe(0);
  });

  it("a call ended before its stream started is ended as soon as it does, once", () => {
    const calls = new OpenCalls();
    const call = calls.open("alice");
    calls.endUser("alice", denied);
    call.end(new ConnectError("later", Code.Unavailable));
    const reasons: string[] = [];
    call.endVia({ fail: (reason) => reasons.push(reason.rawMessage) });
    expect(reasons).toEqual(["disconnected"]);
  });

  it("forgets closed calls, one or many per user", () => {
    const calls = new OpenCalls();
    const one = calls.open("alice");
    one.close();
    expect(calls.size).toBe(0);
    const [x, y] = [calls.open("bob"), calls.open("bob")];
    x.close();
    y.close();
    expect(calls.size).toBe(0);
    expect(calls.endUser("bob", denied)).toBe(0);
  });
});
