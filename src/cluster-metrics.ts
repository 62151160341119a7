import type { Worker } from "node:cluster";
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from "prom-client";

/**
 * `/metrics` with `--workers N`: a scrape lands on whichever worker accepted
 * the connection, yet answers with every worker's series (each labelled
 * `worker`). A target whose series came from a different process at each
 * scrape would look to Prometheus like series vanishing and returning (each
 * marked stale in between), breaking `rate()` and sums; one answer with all
 * of them is what a single scrape target must give.
 *
 * The worker asks the primary over the cluster's IPC channel; the primary
 * asks every worker for its registry as JSON and merges them
 * (prom-client's AggregatorRegistry.aggregate), each series kept apart by
 * its `worker` label.
 */

/** The registry text a scrape is answered with: Registry's own, or every worker's. */
export type MetricsSource = Pick<Registry, "metrics" | "contentType">;

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** The IPC messages, by `type`. */
const scrape = "rivulet:metrics-scrape"; // worker → primary: a scrape arrived, { id }
const collect = "rivulet:metrics-collect"; // primary → every worker: send your registry, { id }
const collected = "rivulet:metrics-collected"; // worker → primary: { id, metrics }
const answer = "rivulet:metrics-answer"; // primary → the scraped worker: { id, text }

/** How long a scrape waits for the other workers; past it, the workers that answered are shown (a busy one is missing for one scrape). */
const collectTimeoutMs = 2000;

type Message = { readonly type: string; readonly id: number; readonly metrics?: MetricsJson; readonly text?: string };

/**
 * Sends over a channel that may close at any moment (a worker dying, the
 * primary gone): with a callback, a closed channel is an error passed to it,
 * not an 'error' event that would bring the process down. The scrape copes
 * with a missing reply (its timeouts).
 */
function sendQuietly(
  send: ((message: Message, handle: undefined, options: object, callback: (error: Error | null) => void) => boolean) | undefined,
  message: Message,
) {
  send?.(message, undefined, {}, () => undefined);
}

function isMessage(value: unknown, type: string): value is Message {
  return typeof value === "object" && value !== null && (value as { type?: unknown }).type === type && typeof (value as { id?: unknown }).id === "number";
}

/** A worker's side: answers the primary's collections and serves scrapes with every worker's metrics. */
export interface WorkerMetrics extends MetricsSource {
  /** Stops answering the primary (the server closed). */
  close(): void;
}

/** In a cluster worker: `registry` is this worker's own, with a `worker` default label. */
export function createWorkerMetrics(registry: Registry): WorkerMetrics {
  const pending = new Map<number, (text: string) => void>();
  let nextId = 0;
  const onMessage = (message: unknown) => {
    if (isMessage(message, collect)) {
      void registry.getMetricsAsJSON().then((metrics) => sendQuietly(process.send?.bind(process), { type: collected, id: message.id, metrics }));
    } else if (isMessage(message, answer) && typeof message.text === "string") {
      pending.get(message.id)?.(message.text);
    }
  };
  process.on("message", onMessage);
  return {
    contentType: registry.contentType,
    metrics() {
      const id = nextId++;
      return new Promise<string>((resolve) => {
        // The primary always answers, unless it is gone or stuck: then this worker's own series, rather than no answer.
        const timer = setTimeout(() => finish(registry.metrics()), collectTimeoutMs * 2);
        const finish = (text: string | Promise<string>) => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(text);
        };
        pending.set(id, finish);
        sendQuietly(process.send?.bind(process), { type: scrape, id });
      });
    },
    close() {
      process.off("message", onMessage);
    },
  };
}

/**
 * The primary's side: relays each worker's scrape to every worker in
 * `workers()` and answers with the merged registries, plus the primary's own
 * `registry` (series without a `worker` label).
 */
export function serveWorkerMetrics(worker: Worker, workers: () => Iterable<Worker>, registry: Registry, onError: (error: unknown) => void): void {
  worker.on("message", (message: unknown) => {
    if (!isMessage(message, scrape)) return;
    // A merge that fails goes unanswered: the scraped worker then answers with its own series.
    void gather(workers, registry).then((text) => sendQuietly(worker.send.bind(worker), { type: answer, id: message.id, text }), onError);
  });
}

let nextCollection = 0;

async function gather(workers: () => Iterable<Worker>, registry: Registry): Promise<string> {
  const id = nextCollection++;
  const asked = [...workers()].filter((worker) => worker.isConnected());
  const replies = await new Promise<(MetricsJson | undefined)[]>((resolve) => {
    // In the order asked (the workers' order), whatever order they answer in: a scrape lists worker 1 first.
    const received: (MetricsJson | undefined)[] = asked.map(() => undefined);
    const listeners = new Map<Worker, (message: unknown) => void>();
    const done = () => {
      clearTimeout(timer);
      for (const [worker, listener] of listeners) worker.off("message", listener);
      resolve(received);
    };
    const timer = setTimeout(done, collectTimeoutMs);
    for (const [index, worker] of asked.entries()) {
      const listener = (message: unknown) => {
        if (!isMessage(message, collected) || message.id !== id || message.metrics === undefined) return;
        received[index] = message.metrics;
        worker.off("message", listener);
        listeners.delete(worker);
        if (listeners.size === 0) done();
      };
      listeners.set(worker, listener);
      worker.on("message", listener);
      sendQuietly(worker.send.bind(worker), { type: collect, id });
    }
    if (asked.length === 0) done();
  });
  // Every series differs by its worker label, so "sum" only gathers them; each
  // metric's own aggregator (omit for the start time, first for the version)
  // would drop all workers but one.
  const all = [await registry.getMetricsAsJSON(), ...replies.filter((reply) => reply !== undefined)].map((metrics) =>
    metrics.map((metric) => ({ ...metric, aggregator: "sum" as const })),
  );
  return AggregatorRegistry.aggregate(all).metrics();
}
