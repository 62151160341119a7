import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { ConfigError } from "../config.js";
import { AdminService } from "../../gen/rivulet/admin/v1/admin_pb.js";
import type { Identity } from "./identity.js";

/** What every API key starts with, so a bearer token says which kind it is without being tried as a JWT. */
export const apiKeyPrefix = "rvk_";

/** The role an API key's identity has: the one AdminService asks for, which an admin's JWT may carry too. */
export const adminRole = "admin";

/**
 * The API keys of `--api-keys-file`, by the SHA-256 of the whole key (hex).
 * Only hashes are kept, in the file and here: a leaked file or heap dump
 * gives no key. A Map lookup by hash is safe against timing: the hash of a
 * 256-bit random secret reveals nothing useful, whatever prefix of it matches.
 */
export interface ApiKeys {
  /** The name of the key, or undefined for a key not listed. */
  nameOf(key: string): string | undefined;
  /** How many keys are listed. */
  readonly size: number;
}

/** No keys at all: every `rvk_` token is refused (no --api-keys-file). */
export const noApiKeys: ApiKeys = { nameOf: () => undefined, size: 0 };

/** Whether a bearer token is an API key rather than a JWT. */
export function isApiKey(token: string): boolean {
  return token.startsWith(apiKeyPrefix);
}

/** The SHA-256 of a key, as the file lists it. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** Reads `--api-keys-file`; a bad line throws ConfigError naming the file and line, so the server does not start. */
export async function loadApiKeys(path: string): Promise<ApiKeys> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(`--api-keys-file ${path} cannot be read: ${(error as Error).message}`);
  }
  return parseApiKeys(text, path);
}

/**
 * Parses the file's lines: `<64 hex sha256> <name>`, names of 1 to 64
 * letters, digits, '.', '_' and '-'; blank lines and `#` comments allowed.
 * Two keys may share a name (a key being rotated); one hash listed twice is a mistake.
 */
export function parseApiKeys(text: string, source: string): ApiKeys {
  const byHash = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([0-9a-fA-F]{64})\s+([A-Za-z0-9._-]{1,64})$/.exec(line);
    const where = `--api-keys-file ${source} line ${i + 1}`;
    if (!match) {
      const hint = line.startsWith(apiKeyPrefix) ? " (this is a key: list its SHA-256, as `npm run apikey -- new NAME` prints it, never the key)" : "";
      throw new ConfigError(`${where}: expected "<sha256 hex of the key> <name>" with a name of 1 to 64 letters, digits, '.', '_' or '-'${hint}`);
    }
    const hash = match[1]!.toLowerCase();
    if (byHash.has(hash)) throw new ConfigError(`${where}: this key is listed already (as "${byHash.get(hash)}")`);
    byHash.set(hash, match[2]!);
  }
  return {
    nameOf: (key) => byHash.get(hashApiKey(key)),
    size: byHash.size,
  };
}

/**
 * The identity of an API key, for the auth interceptor: the `admin` role
 * and the key's name, and no expiry. Unknown keys are `unauthenticated`; a
 * known key on any service but AdminService is `permission_denied`, so a key
 * meant for a backend cannot act as a user anywhere.
 */
export function identifyApiKey(keys: ApiKeys, key: string, service: string): Identity {
  const name = keys.nameOf(key);
  if (name === undefined) throw new ConnectError("unknown API key", Code.Unauthenticated);
  if (service !== AdminService.typeName) throw new ConnectError(`API keys call ${AdminService.typeName} only`, Code.PermissionDenied);
  return { userId: `apikey:${name}`, roles: new Set([adminRole]), expiresAt: undefined, apiKeyName: name };
}
