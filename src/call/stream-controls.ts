import { createContextKey, type Code, type ConnectError } from "@connectrpc/connect";
import type { OpenCall } from "./open-calls.js";

/**
 * What inner interceptors may ask of the one wrapper around a call's stream:
 * an end at a deadline (token expiry, stream lifetime; the earliest wins),
 * work to do once the call is over, however it ends, and an entry in the
 * registry of open calls, through which the call can be ended from outside.
 */
export interface StreamControls {
  /**
   * Registers the call as the user's in the instance's open calls (the auth
   * interceptor, once it knows the user), until it ends. Returns the entry:
   * `end(reason)` on it ends the stream at once (withdrawn access). Called
   * once; later calls return the same entry.
   */
  identify(userId: string): OpenCall;
  /** Ends the stream with ConnectError(`message`, `code`) at `deadline` (ms since the Unix epoch), unless an earlier deadline is set. */
  endBy(deadline: number, code: Code, message: string): void;
  /** Runs once when the call ends: completed, failed, cancelled, or abandoned before it was read. */
  onEnd(callback: () => void): void;
  /**
   * Hands the end of the call over to a stream that outlives its handler (a
   * topic stream writing to its transport's `ResponseSink`): the guard then
   * neither ends the stream at the deadline nor runs the `onEnd` callbacks
   * when the handler returns; the lease's holder does both, once.
   */
  handOver(): StreamLease;
}

/**
 * The end of a call, taken over from the stream guard (`StreamControls.handOver`).
 * Plain data and the end-of-call callbacks only: a lease outlives the call's
 * setup, so it must not hold (through closures) the interceptors' requests,
 * the handler context or the finished iterator chain.
 */
export interface StreamLease {
  /** When the stream must end (ms since the Unix epoch; Infinity for never), with `deadlineError()`. */
  readonly deadline: number;
  deadlineError(): ConnectError;
  /** Runs the call's end-of-call work (per-user stream counts); call it once when the stream ends. */
  release(): void;
  /** The call's entry in the open calls, when it has one: the stream ends through `endVia` from now on. */
  readonly call: OpenCall | undefined;
}

/** Where the stream guard puts a call's controls for the interceptors inside it. */
export const streamControlsKey = createContextKey<StreamControls | undefined>(undefined, { description: "rivulet stream controls" });
