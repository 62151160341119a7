// Run from the repository while `npm start` serves: npx tsx examples/chat-over-websocket.ts
import { createClient } from "@connectrpc/connect";
import { ChatService } from "../gen/rivulet/chat/v1/chat_pb.js"; // generated from proto/ by buf
import { createWebSocketTransport } from "../src/client/websocket-transport.js";

const baseUrl = process.env.RIVULET_URL ?? "http://localhost:8080";
// Development mode mints a token for anyone; docs/security.md says what production uses.
const token = await (await fetch(`${baseUrl}/dev/token?user=alice`)).text();

const transport = createWebSocketTransport({ url: `${baseUrl.replace(/^http/, "ws")}/ws?access_token=${token}` });
const chat = createClient(ChatService, transport);
const { message: sent } = await chat.send({ room: "lobby", text: "hello over WebSocket" });
// The same socket carries the stream: recent history, then live messages. Stop at the one just sent.
for await (const response of chat.subscribe({ room: "lobby", history: 10 })) {
  if (response.event.case === "message") console.log(`${response.event.value.author}: ${response.event.value.text}`);
  if (response.cursor === sent?.cursor) break; // leaving the loop cancels the stream on the server
}
transport.close();
