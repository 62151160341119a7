import { randomBytes } from "node:crypto";

/** Epochs are 8 random base64url characters: distinct per process and per topic incarnation. */
export function createEpoch(): string {
  return randomBytes(6).toString("base64url");
}
