import type { Socket } from "node:net";
import type { MarkerScanner } from "../lib/marker.js";

/** A stream subscribers read: a chat room, or one user's personal topic (Rivulet: their notifications). */
export interface Topic {
  readonly kind: "room" | "user";
  readonly name: string;
}

/** One simulated user: who they are and what they read. */
export interface SubscriberSpec {
  readonly userId: string;
  /** A bearer token for Rivulet (baselines ignore it). */
  readonly token: string;
  readonly topics: readonly Topic[];
}

/** What a target's subscribe code gets from the load generator. */
export interface ConnectContext {
  readonly port: number;
  /** The 127.0.0.x source address this subscriber's connections use. */
  readonly localAddress: string;
  readonly now: () => number;
  /** A fresh marker scanner for each connection. */
  newScanner(): MarkerScanner;
  /** Called once per connection that ends before the bench closes it. */
  onEnd(reason: string): void;
}

/** How the bench starts a server process. */
export interface ServerSpec {
  /** "rivulet" servers share one process per run step; others are bench/servers scripts. */
  readonly kind: "rivulet" | "bench-server";
  /** For bench servers: the script under bench/servers/. */
  readonly script?: string;
  /**
   * Rivulet with `--workers N` (node:cluster; the Redis broker, which it requires): N processes share the port,
   * and the server's memory and CPU are those of all of them together.
   */
  readonly workers?: number;
}

/**
 * One thing the bench measures: a server and the transport its subscribers use.
 * `connect` runs in the load-generator process; the rest in the orchestrator.
 */
export interface Target {
  /** Short id used on the command line (`--targets`) and in JSON. */
  readonly name: string;
  /** Row label in the table. */
  readonly label: string;
  readonly role: "rivulet" | "baseline" | "peer";
  /** Rows of Rivulet are compared with the baseline and peer of the same transport family. */
  readonly family: "websocket" | "sse" | "http2";
  readonly server: ServerSpec;
  /** Opens the subscriber's connections (one per topic, or one for all, as the transport does it). */
  connect(spec: SubscriberSpec, context: ConnectContext): Socket[];
  /** How many connections `connect` opens for `spec` (each must receive a warm-up message per topic it carries). */
  topicsPerConnection(spec: SubscriberSpec): number[];
}

/** The baseline servers' topic names (Rivulet maps topics to its own services). */
export function topicKey(topic: Topic): string {
  return `${topic.kind}.${topic.name}`;
}
