import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";

/** The Prometheus metrics of one server, served at GET /metrics. */
export interface Metrics {
  readonly registry: Registry;
  /** Open client connections, by transport: http1, http2, sse, websocket. */
  readonly connections: Gauge<"transport">;
  /** Connections closed as they arrived, by reason: max_connections (--max-connections were open). */
  readonly connectionsRefused: Counter<"reason">;
  /** Streaming calls in progress, by transport. */
  readonly streams: Gauge<"transport">;
  /** Messages written to subscribers, by transport. */
  readonly deliveries: Counter<"transport">;
  /** Subscribers ended because they read too slowly, by transport. */
  readonly slowConsumersDropped: Counter<"transport">;
  /** WebSocket messages compressed with permessage-deflate: once per fanned-out message, not per socket. */
  readonly websocketDeflated: Counter;
  /** Unary calls answered by the unary bridge (src/bridge/rpc/unary-bridge.ts) rather than connect-node, by protocol: connect, grpc, grpc-web. */
  readonly unaryBridgeCalls: Counter<"protocol">;
}

/**
 * A registry per server (tests run several in one process) with Node's
 * default metrics, event-loop delay included. With `worker` (its number
 * among `--workers`), every series carries the label `worker="<n>"`.
 */
export function createMetrics(worker?: number): Metrics {
  const registry = new Registry();
  if (worker !== undefined) registry.setDefaultLabels({ worker: String(worker) });
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  return {
    registry,
    connections: new Gauge({ name: "rivulet_connections", help: "Open client connections", labelNames: ["transport"], registers: [registry] }),
    connectionsRefused: new Counter({
      name: "rivulet_connections_refused_total",
      help: "Connections closed as they arrived, by reason (max_connections: --max-connections were open)",
      labelNames: ["reason"],
      registers: [registry],
    }),
    streams: new Gauge({ name: "rivulet_streams", help: "Streaming calls in progress", labelNames: ["transport"], registers: [registry] }),
    deliveries: new Counter({ name: "rivulet_deliveries_total", help: "Messages written to subscribers", labelNames: ["transport"], registers: [registry] }),
    slowConsumersDropped: new Counter({
      name: "rivulet_slow_consumers_dropped_total",
      help: "Subscribers ended with resource_exhausted for reading too slowly",
      labelNames: ["transport"],
      registers: [registry],
    }),
    websocketDeflated: new Counter({
      name: "rivulet_websocket_deflated_messages_total",
      help: "WebSocket messages compressed with permessage-deflate (once per message, however many sockets receive it)",
      registers: [registry],
    }),
    unaryBridgeCalls: new Counter({
      name: "rivulet_unary_bridge_calls_total",
      help: "Unary calls answered by the unary bridge rather than connect-node, by protocol (connect, grpc, grpc-web)",
      labelNames: ["protocol"],
      registers: [registry],
    }),
  };
}
