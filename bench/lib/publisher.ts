import { createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createHmacTokens } from "../../src/auth/tokens.js";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { NotificationService } from "../../gen/rivulet/notify/v1/notify_pb.js";
import { topicKey, type Topic } from "../targets/target.js";

/** Publishes one payload to a topic; resolves when the server accepted it. */
export interface Publisher {
  publish(topic: Topic, payload: string): Promise<void>;
}

/**
 * Rivulet's publisher: ChatService.Send for rooms, NotificationService.Publish
 * (payload in `body`) for users, with the generated Connect client over h2c,
 * as a back end would publish.
 */
export async function createRivuletPublisher(port: number, secret: string): Promise<Publisher> {
  const token = await createHmacTokens(secret).mint({ userId: "bench-publisher", roles: ["publisher"], ttlSeconds: 24 * 3600 });
  const transport = createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "2" });
  const chat: Client<typeof ChatService> = createClient(ChatService, transport);
  const notify: Client<typeof NotificationService> = createClient(NotificationService, transport);
  const options = { headers: { authorization: `Bearer ${token}` } };
  return {
    async publish(topic, payload) {
      if (topic.kind === "room") await chat.send({ room: topic.name, text: payload }, options);
      else await notify.publish({ userId: topic.name, kind: "bench", body: payload }, options);
    },
  };
}

/** The baselines' and peers' publisher: `POST /publish?topic=` on their HTTP/1.1 control port (bench/servers/topic-hub.ts). */
export function createControlPublisher(controlPort: number): Publisher {
  return {
    async publish(topic, payload) {
      const response = await fetch(`http://127.0.0.1:${controlPort}/publish?topic=${encodeURIComponent(topicKey(topic))}`, { method: "POST", body: payload });
      if (response.status !== 204) throw new Error(`publish answered HTTP ${response.status}`);
    },
  };
}
