import { rivuletSse } from "./rivulet-sse.js";
import { rivuletWebSocket } from "./rivulet-websocket.js";
import type { Target } from "./target.js";

/**
 * Rivulet with `--workers N` (node:cluster, on the Redis broker, which it requires), for the
 * connections scenario: the same subscribers as `rivulet-ws` and `rivulet-sse`.
 * Six workers are what 100,000 connections take on a machine whose processes
 * may hold 20,000 file descriptors each (`ulimit -Hn`), not what the cores ask.
 */
function withWorkers(base: Target, workers: number): Target {
  return {
    ...base,
    name: `${base.name}-workers-${workers}`,
    label: workers === 1 ? `${base.label}, Redis broker (one process)` : `${base.label}, --workers ${workers} (Redis)`,
    server: { kind: "rivulet", workers },
  };
}

/**
 * `rivulet-ws-workers-2`, `rivulet-sse-workers-2`, `rivulet-ws-workers-6`, `rivulet-sse-workers-6`, and with 1 (one
 * process on Redis, no cluster) to tell the Redis broker's cost from the cluster's.
 */
export const rivuletWorkerTargets: readonly Target[] = [1, 2, 6].flatMap((workers) => [
  withWorkers(rivuletWebSocket, workers),
  withWorkers(rivuletSse, workers),
]);
