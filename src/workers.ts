import cluster, { type Worker } from "node:cluster";
import { Counter, Registry } from "prom-client";
import { backoffDelay } from "./wire/backoff.js";
import type { Config } from "./config.js";
import type { ProcessLog } from "./log.js";
import { serveWorkerMetrics } from "./cluster-metrics.js";
import { newId } from "./services/service-deps.js";

/**
 * `--workers N`: the process becomes a node:cluster primary that serves
 * nothing itself. It forks N workers, each an ordinary Rivulet instance on
 * the shared broker, listening on the same port (the primary holds the
 * socket and hands each connection to a worker in turn, node:cluster's
 * round-robin). A client may land on any worker and resume there, as with
 * separate instances behind a load balancer (docs/scaling.md).
 */

/** What the primary tells a worker it forks, in this environment variable (its argv stays the operator's). */
const assignmentVariable = "RIVULET_WORKER_ASSIGNMENT";

/** A worker's place among `--workers`. */
export interface WorkerAssignment {
  /** 1 to N; a restarted worker keeps its predecessor's number (and so its metrics' `worker` label). */
  readonly number: number;
  /** The configured --instance-id, or one random id of the primary, plus `-<number>`: distinct Redis connection names and presence. */
  readonly instanceId: string;
  /** The port to listen on: the configured one, or for `--port 0` the one the first workers got, once none of them is left. */
  readonly port: number;
}

/** In a worker the primary forked, its assignment; undefined in any other process. */
export function workerAssignment(): WorkerAssignment | undefined {
  const raw = process.env[assignmentVariable];
  if (!cluster.isWorker || raw === undefined) return undefined;
  return JSON.parse(raw) as WorkerAssignment;
}

/** The message a worker sends before exiting when it could not start: the primary reports it, once. */
const failedType = "rivulet:worker-failed";

/** In a worker: tells the primary why it could not start, then exits 1. */
export function reportStartFailure(message: string): void {
  if (process.send === undefined || !process.connected) process.exit(1);
  process.send({ type: failedType, message }, undefined, {}, () => process.exit(1));
}

/** Restarts after a worker died: the first at once or nearly, then spaced (full jitter) up to 10 s while it keeps dying. */
const restartBackoff = { initialMs: 200, maxMs: 10_000 };
/** A worker that served this long before dying was healthy: its next restart starts the backoff afresh. */
const healthyAfterMs = 30_000;
/** Once the service has run, a worker that fails to start this many times in a row stops the primary (a bad deploy, a port taken since). */
const maxStartFailures = 5;
/** What the primary gives the workers beyond --shutdown-grace (their own log flush) before it kills them. */
const exitMarginMs = 1000;

interface Slot {
  readonly number: number;
  worker: Worker | undefined;
  startedAt: number;
  listened: boolean;
  /** Deaths in a row without serving `healthyAfterMs`. */
  deaths: number;
  /** Exits in a row before listening. */
  startFailures: number;
  /** Why its worker could not start, as it said. */
  failure: string | undefined;
  restart: NodeJS.Timeout | undefined;
}

/**
 * Runs the primary until it is stopped (SIGTERM/SIGINT: every worker shuts
 * down gracefully; exit 0) or cannot serve (a worker failed to start: exit 1
 * with its error). A worker that dies otherwise is restarted.
 */
export function runPrimary(config: Config, log: ProcessLog): void {
  const { logger } = log;
  const baseId = config.instanceId ?? newId();
  const registry = new Registry();
  const restarts = new Counter({
    name: "rivulet_worker_restarts_total",
    help: "Workers the primary restarted after they died (--workers)",
    registers: [registry],
  });
  const slots: Slot[] = Array.from({ length: config.workers }, (_, i) => ({
    number: i + 1,
    worker: undefined,
    startedAt: 0,
    listened: false,
    deaths: 0,
    startFailures: 0,
    failure: undefined,
    restart: undefined,
  }));
  const live = () => slots.flatMap((slot) => (slot.worker ? [slot.worker] : []));
  /** Workers that serve: a scrape does not wait for one still starting. */
  const serving = () => slots.flatMap((slot) => (slot.worker && slot.listened ? [slot.worker] : []));
  /**
   * The port workers are told to listen on. node:cluster shares one socket
   * between the workers that asked for the same address and port: with
   * `--port 0`, every worker that asks for 0 while another holds the socket
   * gets its port. Only when none is left (the socket closed with the last)
   * are new workers told the port it had, so clients find them where they were.
   */
  let assignedPort = config.port;
  let port = config.port;
  let served = false;
  let stopping: { code: number; message?: string } | undefined;
  const scheme = config.tlsCert ? "https" : "http";

  const fork = (slot: Slot) => {
    slot.restart = undefined;
    if (live().length === 0) assignedPort = port;
    const assignment: WorkerAssignment = { number: slot.number, instanceId: `${baseId}-${slot.number}`, port: assignedPort };
    const worker = cluster.fork({ [assignmentVariable]: JSON.stringify(assignment) });
    Object.assign(slot, { worker, startedAt: Date.now(), listened: false, failure: undefined });
    serveWorkerMetrics(worker, serving, registry, (error) => logger.warn({ err: error }, "could not merge the workers' metrics; the scrape gets one worker's"));
    worker.on("message", (message: { type?: unknown; message?: unknown } | null) => {
      if (message?.type === failedType && typeof message.message === "string") slot.failure = message.message;
    });
    worker.on("listening", (address: { port: number }) => {
      port = address.port;
      slot.listened = true;
      slot.startFailures = 0;
      logger.info({ worker: slot.number, pid: worker.process.pid, port }, `worker ${slot.number} listening`);
      if (!served && slots.every((s) => s.listened)) {
        served = true;
        logger.info(
          { port, host: config.host, tls: Boolean(config.tlsCert), broker: "redis", workers: slots.length },
          `listening on ${scheme}://${config.host}:${port} with ${slots.length} workers`,
        );
      }
    });
    worker.on("exit", (code: number | null, signal: string | null) => {
      // Its channel closes once the primary has read everything the worker sent (its failure message included).
      if (worker.isConnected()) worker.once("disconnect", () => exited(slot, worker, code, signal));
      else exited(slot, worker, code, signal);
    });
  };

  const exited = (slot: Slot, worker: Worker, code: number | null, signal: string | null) => {
    slot.worker = undefined;
    if (stopping) {
      if (live().length === 0) finish();
      return;
    }
    const why = slot.failure ?? `worker ${slot.number} exited (${signal ?? `code ${String(code)}`}) before listening`;
    if (!slot.listened && (!served || ++slot.startFailures >= maxStartFailures)) {
      // Nothing a retry would change (a port in use, a missing TLS file) or a worker that cannot start at all: say so and stop.
      logger.error({ worker: slot.number, pid: worker.process.pid, code, signal }, `worker ${slot.number} failed to start: ${why}`);
      stop({ code: 1, message: why });
      return;
    }
    if (Date.now() - slot.startedAt >= healthyAfterMs) slot.deaths = 0;
    const delayMs = backoffDelay(slot.deaths++, restartBackoff);
    restarts.inc();
    logger.warn(
      { worker: slot.number, pid: worker.process.pid, code, signal, restartInMs: delayMs },
      `worker ${slot.number} ${slot.listened ? "died" : `failed to start (${why})`}; restarting it`,
    );
    slot.restart = setTimeout(() => fork(slot), delayMs);
  };

  let exitTimer: NodeJS.Timeout | undefined;
  const stop = (outcome: { code: number; message?: string }) => {
    stopping = outcome;
    for (const slot of slots) clearTimeout(slot.restart);
    if (live().length === 0) return finish();
    // Each worker shuts down gracefully within --shutdown-grace (src/main.ts); one that overruns it is killed.
    for (const worker of live()) worker.process.kill("SIGTERM");
    exitTimer = setTimeout(() => {
      logger.warn({ workers: live().map((worker) => worker.process.pid) }, "workers still running after --shutdown-grace: killing them");
      outcome.code ||= 1;
      for (const worker of live()) worker.process.kill("SIGKILL");
    }, config.shutdownGraceMs + exitMarginMs);
  };

  const finish = () => {
    clearTimeout(exitTimer);
    const { code, message } = stopping!;
    if (code === 0) logger.info("shut down");
    void log.close(exitMarginMs).then(() => {
      if (message !== undefined) process.stderr.write(`rivulet: ${message}\n`);
      process.exit(code);
    });
  };

  let signals = 0;
  const onSignal = (signal: string) => {
    if (++signals > 1) {
      logger.warn({ signal }, "second signal: killing the workers and exiting now");
      for (const worker of live()) worker.process.kill("SIGKILL");
      void log.close(0).then(() => process.exit(1));
      return;
    }
    logger.info({ signal, workers: live().length }, "received signal: shutting the workers down");
    stop({ code: 0 });
  };
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  process.on("SIGINT", () => onSignal("SIGINT"));

  logger.info({ workers: slots.length, pid: process.pid, instanceIds: `${baseId}-1…${slots.length}` }, `starting ${slots.length} workers`);
  for (const slot of slots) fork(slot);
}
