// With @rivulet/client installed (README.md, "Client package"), while `npm start` serves: npx tsx examples/client-package.ts
import { createClient } from "@connectrpc/connect";
import { ChatService, createSseTransport, createWebSocketTransport } from "@rivulet/client";
import type { ChatMessage } from "@rivulet/client/chat"; // each service's messages: /chat, /notify, /progress, /admin

const baseUrl = process.env.RIVULET_URL ?? "http://localhost:8080";
// Development mode mints a token for anyone; docs/security.md says what production uses.
const token = await (await fetch(`${baseUrl}/dev/token?user=alice`)).text();

// Unary calls and streams over one WebSocket; the same client over SSE takes only the transport.
const websocket = createWebSocketTransport({ url: `${baseUrl.replace(/^http/, "ws")}/ws`, token });
const chat = createClient(ChatService, websocket);
const { message: sent } = await chat.send({ room: "lobby", text: "hello from @rivulet/client" });
const overSse = createClient(ChatService, createSseTransport({ baseUrl, token, unaryTransport: websocket }));

function print(message: ChatMessage): void {
  console.log(`${message.author}: ${message.text}`);
}

const stop = new AbortController(); // connect-es ends a stream on abort, not on break
for await (const response of overSse.subscribe({ room: "lobby", history: 10 }, { signal: stop.signal })) {
  if (response.event.case === "message") print(response.event.value);
  if (response.cursor === sent?.cursor) break; // a later subscribe({ room, cursor }) resumes after any response
}
stop.abort();
websocket.close();
