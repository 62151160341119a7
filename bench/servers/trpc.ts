import { EventEmitter, on } from "node:events";
import { createServer } from "node:http";
import { initTRPC, tracked } from "@trpc/server";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { applyWSSHandler } from "@trpc/server/adapters/ws";
import { WebSocketServer } from "ws";
import { announce, handlePublish } from "./topic-hub.js";

// Peer: tRPC v11 subscriptions, as its docs write them: an async generator
// that iterates `on(emitter, topic)` and yields each message as a `tracked()`
// event (its id is what a reconnecting client resumes from). One router,
// served over SSE (httpSubscriptionLink: `GET /trpc/onMessage?input=…`, the
// standalone adapter) and over WebSocket (wsLink: `applyWSSHandler`), with
// tRPC's defaults (no transformer, no keep-alive pings).

interface Message {
  readonly id: string;
  readonly text: string;
}

const emitter = new EventEmitter();
// Every subscription is a listener of its topic's event: thousands per topic.
emitter.setMaxListeners(0);
let published = 0;

function parseInput(value: unknown): { topic: string } {
  const topic = typeof value === "object" && value !== null ? (value as { topic?: unknown }).topic : undefined;
  if (typeof topic !== "string") throw new Error("input.topic must be a string");
  return { topic };
}

const t = initTRPC.create();
const router = t.router({
  onMessage: t.procedure.input(parseInput).subscription(async function* ({ input, signal }) {
    for await (const [message] of on(emitter, input.topic, { signal }) as AsyncIterableIterator<[Message]>) {
      yield tracked(message.id, message.text);
    }
  }),
});
export type BenchRouter = typeof router;

const trpcHandler = createHTTPHandler({ router, basePath: "/trpc/" });
const server = createServer((req, res) => {
  if (handlePublish(req, res, (topic, payload) => emitter.emit(topic, { id: String(++published), text: payload.toString("latin1") } satisfies Message))) return;
  if (req.url?.startsWith("/trpc/")) trpcHandler(req, res);
  else res.writeHead(404).end();
});
const wss = new WebSocketServer({ server, perMessageDeflate: false });
applyWSSHandler({ wss, router });
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address && typeof address === "object") announce(address.port);
});
