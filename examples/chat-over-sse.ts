// Follows a chat room over Server-Sent Events, then resumes with Last-Event-ID after being away.
// Run while `npm start` serves: npx tsx examples/chat-over-sse.ts
// In your own project: npm install @rivulet/client @connectrpc/connect @connectrpc/connect-web @bufbuild/protobuf
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web"; // fetch-based Connect: browsers and Node
import { ChatService, createSseClient } from "@rivulet/client";

const baseUrl = process.env.RIVULET_URL ?? "http://localhost:8080";
// Development mode mints a token for anyone; docs/security.md says what production uses.
const token = await (await fetch(`${baseUrl}/dev/token?user=alice`)).text();

// SSE carries streams only: Send goes over Connect, with the same token.
const bearer: Interceptor = (next) => (request) => {
  request.header.set("Authorization", `Bearer ${token}`);
  return next(request);
};
const chat = createClient(ChatService, createConnectTransport({ baseUrl, interceptors: [bearer] }));
// Typed events from GET /sse/rivulet.chat.v1.ChatService/Subscribe; it reconnects and resumes by itself after a drop.
const sse = createSseClient({ baseUrl, token });

const { message: sent } = await chat.send({ room: "lobby", text: "hello over SSE" });
// Recent history, then live messages, up to the one just sent. Each event's id is its cursor: keep the last.
let lastEventId = "";
for await (const response of sse.subscribe(ChatService.method.subscribe, { room: "lobby", history: 10 })) {
  if (response.event.case === "message") console.log(`${response.event.value.author}: ${response.event.value.text}`);
  lastEventId = response.cursor;
  if (lastEventId === sent?.cursor) break; // leaving the loop closes the request
}

// Away for a while, the room moves on. Subscribing again with Last-Event-ID replays exactly what was missed.
const { message: missed } = await chat.send({ room: "lobby", text: "sent while away" });
for await (const response of sse.subscribe(ChatService.method.subscribe, { room: "lobby" }, { lastEventId })) {
  if (response.event.case === "message") console.log(`missed: ${response.event.value.author}: ${response.event.value.text}`);
  if (response.cursor === missed?.cursor) break;
}
