import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { identityKey } from "../auth/identity.js";
import { streamControlsKey } from "../call/stream-controls.js";

export interface UserLimits {
  /** Unary calls (writes: send, publish, signal, report, start, cancel; and History pages) a user may make per second, sustained. */
  readonly publishRate: number;
  /** Unary calls a user may make at once after a quiet spell (the bucket's size). */
  readonly publishBurst: number;
  /** Streams one user may hold open at once, over every transport together. */
  readonly streamsPerUser: number;
  /** How long one stream may stay open; then it ends with `unavailable` and the client resumes. */
  readonly streamLifetimeMs: number;
}

/** Buckets kept before full (idle) ones are forgotten. */
const sweepAbove = 10_000;

/**
 * Per-user limits, applied after authentication to every transport alike:
 * a token bucket for unary calls, a cap on concurrent streams, and a lifetime
 * for each stream (so long-lived subscribers rebalance across instances and
 * come back through authentication now and then). The first two answer
 * `resource_exhausted`; the rate limit's error says when to retry, in its
 * message and in a `retry-after` header (seconds, as in HTTP).
 *
 * Limits are per process: N instances let a user make N times the rate.
 */
export function createUserLimitsInterceptor(limits: UserLimits, now: () => number = Date.now): Interceptor {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const openStreams = new Map<string, number>();

  function take(userId: string): void {
    const time = now();
    const bucket = buckets.get(userId) ?? { tokens: limits.publishBurst, at: time };
    bucket.tokens = Math.min(limits.publishBurst, bucket.tokens + ((time - bucket.at) / 1000) * limits.publishRate);
    bucket.at = time;
    if (bucket.tokens < 1) {
      const waitMs = Math.ceil(((1 - bucket.tokens) / limits.publishRate) * 1000);
      const error = new ConnectError(`rate limit: at most ${limits.publishRate} writes per second; retry in ${waitMs} ms`, Code.ResourceExhausted);
      error.metadata.set("retry-after", String(Math.ceil(waitMs / 1000)));
      throw error;
    }
    bucket.tokens -= 1;
    buckets.set(userId, bucket);
    if (buckets.size > sweepAbove) sweep(time);
  }

  /** Forgets buckets that have refilled: they hold nothing a new bucket would not. */
  function sweep(time: number): void {
    for (const [user, bucket] of buckets) {
      if (bucket.tokens + ((time - bucket.at) / 1000) * limits.publishRate >= limits.publishBurst) buckets.delete(user);
    }
  }

  /** The end of one stream of `userId`; a closure over the user id alone, since a detached stream keeps it (see StreamLease). */
  function closeStream(userId: string): () => void {
    return () => {
      const left = (openStreams.get(userId) ?? 1) - 1;
      if (left <= 0) openStreams.delete(userId);
      else openStreams.set(userId, left);
    };
  }

  return (next) => async (request) => {
    const identity = request.contextValues.get(identityKey);
    if (!identity) return next(request);
    if (request.method.methodKind === "unary") {
      take(identity.userId);
      return next(request);
    }
    const open = openStreams.get(identity.userId) ?? 0;
    if (open >= limits.streamsPerUser) {
      throw new ConnectError(`at most ${limits.streamsPerUser} streams per user are open at once`, Code.ResourceExhausted);
    }
    openStreams.set(identity.userId, open + 1);
    const controls = request.contextValues.get(streamControlsKey);
    if (!controls) throw new Error("the stream guard interceptor must run outside the user limits");
    controls.onEnd(closeStream(identity.userId));
    controls.endBy(now() + limits.streamLifetimeMs, Code.Unavailable, "stream lifetime reached: resume from your last cursor");
    return next(request);
  };
}
