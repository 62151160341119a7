import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Entry } from "../broker/broker.js";
import { decodeCursor } from "../broker/cursor.js";
import { identityOf, type Identity } from "../auth/identity.js";
import { streamPolicyOf } from "../wire/stream-policy.js";
import { JobSchema, JobState, ProgressService, WatchResponseSchema, type Job, type WatchResponse } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { newId, type ServiceDeps } from "./service-deps.js";
import { streamTopic } from "./topic-stream.js";
import { checkId, checkName, checkRange, checkText } from "./validate.js";

/** The broker topic of one job: its snapshots, newest last. */
export function jobTopic(jobId: string): string {
  return `progress.job/${jobId}`;
}

/** Conflicting concurrent reports (see `apply`) retried before answering `aborted`. */
const maxReportAttempts = 50;

const terminal = new Set([JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED]);

/** True for SUCCEEDED, FAILED and CANCELED. */
export function isTerminal(state: JobState): boolean {
  return terminal.has(state);
}

type Update = Pick<Job, "state" | "fraction" | "stage" | "message">;

/**
 * ProgressService. A job is a topic of snapshots: the newest is the job's
 * state, so every instance sharing the broker sees the same job, and a watcher
 * is a conflated subscription to that topic.
 */
export function createProgressService(deps: ServiceDeps): ServiceImpl<typeof ProgressService> {
  const policy = streamPolicyOf(ProgressService.method.watch);
  const responses = new WeakMap<Entry, WatchResponse>();
  // Reports on one job are applied one at a time in this process.
  const queues = new Map<string, Promise<unknown>>();
  const retention = { maxCount: 16, maxAgeMs: deps.finishedRetention.maxAgeMs };

  /** A stored snapshot with its sequence: the entry's offset in the job's log. */
  function snapshot(entry: Entry): Job {
    const job = fromBinary(JobSchema, entry.data);
    job.sequence = BigInt(entry.position.offset);
    return job;
  }

  async function latest(jobId: string): Promise<{ job: Job; entry: Entry }> {
    const topic = jobTopic(jobId);
    const entry = (await deps.broker.read(topic, { last: 1 }, 1)).entries[0];
    if (!entry) throw new ConnectError(`job ${jobId} not found`, Code.NotFound);
    return { job: snapshot(entry), entry };
  }

  function mayAccess(identity: Identity, job: Job): boolean {
    return job.owner === identity.userId || identity.roles.has("worker");
  }

  /**
   * Applies an update to the newest snapshot and publishes the result, only
   * on top of the snapshot it read: instances sharing the broker may report
   * on one job at once, and a report built on a stale snapshot must neither
   * undo another (a lost update) nor follow a terminal state. On a conflict
   * it reads again and retries; reports in this process also queue per job.
   */
  function apply(jobId: string, update: (job: Job) => Update): Promise<Job> {
    const previous = queues.get(jobId) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(async () => {
        for (let attempt = 1; ; attempt++) {
          const { job, entry: current } = await latest(jobId);
          if (isTerminal(job.state)) {
            throw new ConnectError(`job ${jobId} has already finished`, Code.FailedPrecondition);
          }
          const fields = update(job);
          const updated = create(JobSchema, { ...job, ...fields, updatedAt: timestampNow(), sequence: 0n });
          try {
            const { entry } = await deps.broker.publish(jobTopic(jobId), toBinary(JobSchema, updated), { retention, expectHead: current.position });
            return snapshot(entry);
          } catch (error) {
            // Past this many conflicts the caller gets `aborted` and may retry.
            if (!(error instanceof ConnectError && error.code === Code.Aborted) || attempt >= maxReportAttempts) throw error;
          }
        }
      });
    queues.set(jobId, next);
    void next
      .finally(() => {
        if (queues.get(jobId) === next) queues.delete(jobId);
      })
      .catch(() => undefined);
    return next;
  }

  /** The embedded "demo" kind: `steps` steps of `step_ms` each, then SUCCEEDED. */
  async function runDemo(jobId: string, steps: number, stepMs: number): Promise<void> {
    const signal = deps.shutdownSignal;
    try {
      for (let step = 1; step <= steps; step++) {
        await sleep(stepMs, undefined, { signal });
        const done = step === steps;
        await apply(jobId, () => ({
          state: done ? JobState.SUCCEEDED : JobState.RUNNING,
          fraction: step / steps,
          stage: `step ${step} of ${steps}`,
          message: done ? "demo finished" : `working on step ${step + 1}`,
        }));
      }
    } catch {
      await apply(jobId, (job) => ({ ...job, state: JobState.FAILED, message: "interrupted: the server shut down" })).catch(() => undefined);
    }
  }

  return {
    async start(request, context) {
      const identity = identityOf(context);
      checkName("kind", request.kind);
      const demo = request.kind === "demo" ? demoParams(request.params) : undefined;
      if (Object.keys(request.params).length > 32) throw new ConnectError("params has more than 32 entries", Code.InvalidArgument);
      const id = newId();
      const job = create(JobSchema, {
        id,
        kind: request.kind,
        state: JobState.PENDING,
        owner: identity.userId,
        message: "created",
        updatedAt: timestampNow(),
      });
      const { entry } = await deps.broker.publish(jobTopic(id), toBinary(JobSchema, job), { retention });
      if (demo) void runDemo(id, demo.steps, demo.stepMs);
      return { job: snapshot(entry) };
    },

    async report(request, context) {
      const identity = identityOf(context);
      checkId("job_id", request.jobId);
      if (request.state !== JobState.UNSPECIFIED && !(request.state in JobState)) {
        throw new ConnectError("state is not a known JobState", Code.InvalidArgument);
      }
      if (request.state === JobState.PENDING) throw new ConnectError("state cannot go back to PENDING", Code.InvalidArgument);
      checkRange("fraction", request.fraction, 0, 1);
      checkText("stage", request.stage, 0, 128);
      checkText("message", request.message, 0, 1024);
      const { job: current } = await latest(request.jobId);
      if (!mayAccess(identity, current)) {
        throw new ConnectError("reporting needs the worker role or the job's owner", Code.PermissionDenied);
      }
      const job = await apply(request.jobId, (job) => ({
        state: request.state === JobState.UNSPECIFIED ? JobState.RUNNING : request.state,
        fraction: request.fraction,
        stage: request.stage || job.stage,
        message: request.message,
      }));
      return { job };
    },

    async *watch(request, context) {
      const identity = identityOf(context);
      checkId("job_id", request.jobId);
      const topic = jobTopic(request.jobId);
      const after = request.cursor ? decodeCursor(topic, request.cursor) : undefined;
      const { job, entry } = await latest(request.jobId);
      if (!mayAccess(identity, job)) throw new ConnectError("only the job's owner or a worker may watch it", Code.PermissionDenied);
      const caughtUp = after && after.epoch === entry.position.epoch && after.offset >= entry.position.offset;
      if (caughtUp && isTerminal(job.state)) return; // finished: nothing more to send
      const updates = streamTopic({
        hub: deps.hub,
        topic,
        policy,
        from: after ? { after } : { last: 1 },
        bufferSize: deps.subscriberBuffer,
        context,
        cache: responses,
        toResponse(event, cursor) {
          if (event.kind === "gap") throw new Error("conflated streams have no gaps");
          return create(WatchResponseSchema, { job: snapshot(event.entry), cursor });
        },
        until: (response) => response.job !== undefined && isTerminal(response.job.state),
      });
      yield* updates;
    },
  };
}

function demoParams(params: Record<string, string>): { steps: number; stepMs: number } {
  const steps = Number(params.steps ?? "5");
  const stepMs = Number(params.step_ms ?? "500");
  if (!Number.isInteger(steps) || steps < 1 || steps > 100) {
    throw new ConnectError("params.steps must be an integer from 1 to 100", Code.InvalidArgument);
  }
  if (!Number.isInteger(stepMs) || stepMs < 0 || stepMs > 60_000) {
    throw new ConnectError("params.step_ms must be an integer from 0 to 60000", Code.InvalidArgument);
  }
  return { steps, stepMs };
}
