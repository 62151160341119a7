// A chat client over one WebSocket: send, read the room, stop, come back later and resume.
// Run while `npm start` serves: npx tsx examples/chat-over-websocket.ts
// In your own project: npm install @rivulet/client @connectrpc/connect @bufbuild/protobuf (README.md, "Client package").
import { createClient } from "@connectrpc/connect";
import { ChatService, createWebSocketTransport } from "@rivulet/client";
import type { SubscribeResponse } from "@rivulet/client/chat"; // each service's messages: /chat, /notify, /progress, /admin

const baseUrl = process.env.RIVULET_URL ?? "http://localhost:8080";
// Development mode mints a token for anyone; docs/security.md says what production uses.
const token = await (await fetch(`${baseUrl}/dev/token?user=alice`)).text();
const url = `${baseUrl.replace(/^http/, "ws")}/ws`;

/** Prints a room's messages until the one with cursor `until`; returns the last cursor seen. */
async function readUntil(stream: AsyncIterable<SubscribeResponse>, until: string): Promise<string> {
  let cursor = "";
  for await (const response of stream) {
    if (response.event.case === "message") console.log(`${response.event.value.author}: ${response.event.value.text}`);
    cursor = response.cursor; // every response has one: keep the last to resume after it
    if (cursor === until) break; // leaving the loop cancels the stream on the server
  }
  return cursor;
}

// Unary calls and streams share the socket, which reconnects and resumes by itself after a drop.
const first = createWebSocketTransport({ url, token });
const chat = createClient(ChatService, first);
const { message: sent } = await chat.send({ room: "lobby", text: "hello over WebSocket" });
// Recent history, then live messages, up to the one just sent.
const cursor = await readUntil(chat.subscribe({ room: "lobby", history: 10 }), sent!.cursor);
first.close();

// Later, on a new connection: a cursor resumes exactly after it, with every message since, once each.
const second = createWebSocketTransport({ url, token });
const again = createClient(ChatService, second);
const { message: later } = await again.send({ room: "lobby", text: "sent after the cursor" });
console.log("resuming after", cursor);
await readUntil(again.subscribe({ room: "lobby", cursor }), later!.cursor);
second.close();
