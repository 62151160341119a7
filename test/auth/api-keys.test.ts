import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { hashApiKey, identifyApiKey, parseApiKeys } from "../../src/auth/api-keys.js";
import { ConfigError } from "../../src/config.js";

const key = "rvk_" + "a".repeat(43);

describe("API keys file", () => {
  it("reads hashes and names, skipping blank lines and comments, upper-case hex too", () => {
    const keys = parseApiKeys(`# backends\n\n  ${hashApiKey(key).toUpperCase()}\tbilling  \r\n${hashApiKey("rvk_b")} billing\n`, "keys");
    expect(keys.size).toBe(2);
    expect(keys.nameOf(key)).toBe("billing");
    expect(keys.nameOf("rvk_b")).toBe("billing");
    expect(keys.nameOf("rvk_c")).toBeUndefined();
  });

  it.each([
    ["deadbeef billing", "line 2"],
    [`${hashApiKey(key)}`, "line 2"],
    [`${hashApiKey(key)} two words`, "line 2"],
    [`${hashApiKey(key)} ${"n".repeat(65)}`, "line 2"],
  ])("refuses %j naming the line", (line, where) => {
    expect(() => parseApiKeys(`# first\n${line}\n`, "/etc/keys")).toThrow(
      new ConfigError(`--api-keys-file /etc/keys ${where}: expected "<sha256 hex of the key> <name>" with a name of 1 to 64 letters, digits, '.', '_' or '-'`),
    );
  });

  it("says so when a line holds a key instead of its hash, and refuses a hash listed twice", () => {
    expect(() => parseApiKeys(`${key} billing\n`, "k")).toThrow(/line 1: .*\(this is a key: list its SHA-256/);
    expect(() => parseApiKeys(`${hashApiKey(key)} a\n${hashApiKey(key)} b\n`, "k")).toThrow(
      new ConfigError(`--api-keys-file k line 2: this key is listed already (as "a")`),
    );
  });

  it("gives a known key the admin role and its name, on AdminService only", () => {
    const keys = parseApiKeys(`${hashApiKey(key)} billing\n`, "k");
    expect(identifyApiKey(keys, key, "rivulet.admin.v1.AdminService")).toEqual({
      userId: "apikey:billing",
      roles: new Set(["admin"]),
      expiresAt: undefined,
      apiKeyName: "billing",
    });
    expect(() => identifyApiKey(keys, key, "rivulet.chat.v1.ChatService")).toThrow(
      new ConnectError("API keys call rivulet.admin.v1.AdminService only", Code.PermissionDenied),
    );
    expect(() => identifyApiKey(keys, "rvk_other", "rivulet.admin.v1.AdminService")).toThrow(new ConnectError("unknown API key", Code.Unauthenticated));
  });
});
