// The token's `rooms` claim and user-limited room names: the two sources of
// the access decision that need no backend, read exactly as docs/security.md
// says ("Rooms and access").
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RoomGrants } from "../../src/auth/room-grants.js";
import { isRoomName, roomNameMax, usersOfRoom } from "../../src/wire/room-name.js";

function grants(claim: unknown): RoomGrants {
  const parsed = RoomGrants.parse(claim);
  if (typeof parsed === "string") throw new Error(parsed);
  return parsed;
}

describe("the rooms claim", () => {
  const claim = grants({ "team-42:*": ["read", "write"], news: ["read"], "*": [] });

  it.each([
    ["team-42:general", "read", true],
    ["team-42:general", "write", true],
    ["team-42:", "write", true],
    ["team-4", "read", false],
    ["team-420:general", "read", false],
    ["news", "read", true],
    ["news", "write", false],
    ["news-archive", "read", false],
    ["lobby", "read", false],
  ] as const)("%s, %s: %s", (room, action, granted) => {
    expect(claim.grants(room, action)).toBe(granted);
  });

  it("a lone * grants every room", () => {
    const everything = grants({ "*": ["read"] });
    fc.assert(fc.property(fc.stringMatching(/^[A-Za-z0-9\-_.:#,@]{1,200}$/), (room) => everything.grants(room, "read") && !everything.grants(room, "write")));
  });

  it.each([
    ["not an object", ["read"], 'must map room patterns (a name, or a prefix ending in "*") to lists of "read" and "write"'],
    ["null", null, 'must map room patterns (a name, or a prefix ending in "*") to lists of "read" and "write"'],
    ["actions not a list", { lobby: "read" }, 'must map room patterns (a name, or a prefix ending in "*") to lists of "read" and "write"'],
    [
      "an unknown action",
      { lobby: ["read", "admin"] },
      'must map room patterns (a name, or a prefix ending in "*") to lists of "read" and "write"; "lobby" lists "admin"',
    ],
    [
      "a pattern with a space",
      { "team 42:*": ["read"] },
      'must map room patterns (a name, or a prefix ending in "*") to lists of "read" and "write"; "team 42:*" is neither a room name nor a prefix of one followed by "*"',
    ],
    [
      "a star inside a pattern",
      { "team-*:general": ["read"] },
      'must map room patterns (a name, or a prefix ending in "*") to lists of "read" and "write"; "team-*:general" is neither a room name nor a prefix of one followed by "*"',
    ],
    ["too many patterns", Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`room-${i}`, ["read"]])), "has more than 256 patterns"],
  ])("refuses %s, saying what is wrong", (_name, value, message) => {
    expect(RoomGrants.parse(value)).toBe(message);
  });
});

describe("room names", () => {
  it.each(["lobby", "team-42:general", "dm#alice,bob", "a@b.c", "x".repeat(roomNameMax)])("accepts %s", (name) => {
    expect(isRoomName(name)).toBe(true);
  });

  it.each(["", "x".repeat(roomNameMax + 1), "a b", "a/b", "a{b}", "été", "a*"])("refuses %j", (name) => {
    expect(isRoomName(name)).toBe(false);
  });

  it.each([
    ["dm#alice,bob", ["alice", "bob"]],
    ["support#42", ["42"]],
    ["team:x#a#b", ["b"]],
    ["dm#alice,", ["alice"]],
    // Built from missing ids: nobody's room, never an open one.
    ["dm#", []],
    ["dm#,", []],
    ["lobby", undefined],
    ["team-42:general", undefined],
  ] as const)("%s is for %j", (name, users) => {
    expect(usersOfRoom(name)).toEqual(users);
  });
});
