// What a UI shows about its connection, while `npm start` serves: npx tsx examples/client-connection-state.ts
import { Code, createClient } from "@connectrpc/connect";
import { ChatService, createWebSocketTransport } from "@rivulet/client";

const baseUrl = process.env.RIVULET_URL ?? "http://localhost:8080";
const token = await (await fetch(`${baseUrl}/dev/token?user=alice`)).text();

let attempts = 0;
const transport = createWebSocketTransport({
  // The first attempt goes to a port where nothing listens, as when the network is down.
  url: () => (++attempts === 1 ? "ws://127.0.0.1:9/ws" : `${baseUrl.replace(/^http/, "ws")}/ws`),
  token,
  onStateChange(state, { retryAt, error }) {
    // "waiting" says when the next attempt starts and why the socket is down: a countdown's two ends.
    if (state === "waiting") console.log(`waiting (${Code[error!.code]}), next attempt in ${Math.max(0, retryAt! - Date.now())} ms`);
    else console.log(state);
  },
  // Writes held until the socket opens (or, with an outbox, stored until answered).
  onQueueChange: (count) => console.log(`queued writes: ${count}`),
});
const chat = createClient(ChatService, transport);

const sent = await Promise.all(["one", "two"].map((text) => chat.send({ room: "lobby", text })));
console.log(`sent: ${sent.map(({ message }) => message?.text).join(", ")}; queued writes: ${transport.queuedWrites}`);
transport.close();
