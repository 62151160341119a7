import { randomBytes } from "node:crypto";
import type { Broker, Retention } from "../broker/broker.js";
import type { TopicHub } from "../broker/topic-hub.js";
import type { OpenCalls } from "../call/open-calls.js";
import type { RoomAccess } from "../auth/room-access.js";
import type { Generator } from "./generator.js";

/** What every service is built from: the broker and the limits that shape its topics. */
export interface ServiceDeps {
  readonly broker: Broker;
  /** One shared live feed per topic on this instance (see topic-hub.ts). */
  readonly hub: TopicHub;
  /** Who may read and write which room (docs/security.md, "Rooms and access"). */
  readonly access: RoomAccess;
  /** The authenticated calls open on this instance, by user (what the server API's Disconnect ends). */
  readonly calls: OpenCalls;
  /** Retention of chat rooms and notification logs. */
  readonly retention: Retention;
  /** Retention of finished jobs and completions, so late watchers and resumes still work. */
  readonly finishedRetention: Retention;
  /** Most live messages held for one slow subscriber before it is ended with resource_exhausted. */
  readonly subscriberBuffer: number;
  /** How long idempotency keys are remembered. */
  readonly idempotencyTtlMs: number;
  /** A completion with no new event for this long is ended with finish_reason "error" (its generator's instance died or stalled). */
  readonly completionStallMs: number;
  /** The model behind ChatService.Complete. */
  readonly generator: Generator;
  /** Aborted when the server shuts down: stops background work (demo jobs, completions). */
  readonly shutdownSignal: AbortSignal;
}

/** A random, URL-safe, 16-character id (96 bits). */
export function newId(): string {
  return randomBytes(12).toString("base64url");
}
