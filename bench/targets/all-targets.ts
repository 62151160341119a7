import { bareHttp2 } from "./bare-http2.js";
import { bareSse } from "./bare-sse.js";
import { bareWebSocket } from "./bare-websocket.js";
import { grpcJs } from "./grpc-js.js";
import { rivuletConnect } from "./rivulet-connect.js";
import { rivuletGrpc } from "./rivulet-grpc.js";
import { rivuletSse } from "./rivulet-sse.js";
import { rivuletWebSocket, rivuletWebSocketDeflate } from "./rivulet-websocket.js";
import { rivuletWorkerTargets } from "./rivulet-workers.js";
import { socketIo } from "./socket-io.js";
import type { Target } from "./target.js";
import { trpcSse, trpcWebSocket } from "./trpc.js";

/** Every target, Rivulet's first, in table order. */
export const allTargets: readonly Target[] = [
  rivuletWebSocket,
  rivuletSse,
  rivuletConnect,
  rivuletGrpc,
  bareWebSocket,
  bareSse,
  bareHttp2,
  socketIo,
  trpcWebSocket,
  trpcSse,
  grpcJs,
];

/** Targets that only their own scenario runs (scenario (g); the connections scenario's workers); found by name like the others. */
const scenarioTargets: readonly Target[] = [rivuletWebSocketDeflate, ...rivuletWorkerTargets];

/** The target with this name; throws with the list when there is none. */
export function targetNamed(name: string): Target {
  const target = [...allTargets, ...scenarioTargets].find((t) => t.name === name);
  if (!target) throw new Error(`unknown target "${name}"; known: ${[...allTargets, ...scenarioTargets].map((t) => t.name).join(", ")}`);
  return target;
}
