import type { IncomingMessage, ServerResponse } from "node:http";

/** Subscribers by topic, for the baseline and peer servers. */
export interface TopicHub<T> {
  add(topic: string, subscriber: T): void;
  remove(topic: string, subscriber: T): void;
  subscribers(topic: string): Iterable<T>;
}

/** A Map of Sets: the least a fan-out server can keep. */
export function createTopicHub<T>(): TopicHub<T> {
  const topics = new Map<string, Set<T>>();
  return {
    add(topic, subscriber) {
      let set = topics.get(topic);
      if (!set) topics.set(topic, (set = new Set()));
      set.add(subscriber);
    },
    remove(topic, subscriber) {
      topics.get(topic)?.delete(subscriber);
    },
    subscribers: (topic) => topics.get(topic) ?? [],
  };
}

/**
 * `POST /publish?topic=<topic>` with the payload as the body: how the bench
 * publishes to servers that are not Rivulet. Answers 204, or 404 for other paths.
 * Returns false when the request is not a publish, so the caller may serve it.
 */
export function handlePublish(req: IncomingMessage, res: ServerResponse, publish: (topic: string, payload: Buffer) => void): boolean {
  if (req.method !== "POST" || !req.url?.startsWith("/publish")) return false;
  const topic = new URL(req.url, "http://localhost").searchParams.get("topic") ?? "";
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    publish(topic, Buffer.concat(chunks));
    res.writeHead(204).end();
  });
  return true;
}

/** Tells the bench where the server listens (spawn-process.ts reads `"port":N` and `"controlPort":N`). */
export function announce(port: number, controlPort = port): void {
  process.stdout.write(`${JSON.stringify({ port, controlPort })}\n`);
}
