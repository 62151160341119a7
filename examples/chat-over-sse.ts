// Run from the repository while `npm start` serves: npx tsx examples/chat-over-sse.ts
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web"; // fetch-based: browsers and Node
import { ChatService } from "../gen/rivulet/chat/v1/chat_pb.js"; // generated from proto/ by buf
import { createSseTransport } from "../src/client/sse-transport.js";

const baseUrl = process.env.RIVULET_URL ?? "http://localhost:8080";
// Development mode mints a token for anyone; docs/security.md says what production uses.
const token = await (await fetch(`${baseUrl}/dev/token?user=alice`)).text();

// Streams go over SSE; unary calls (Send) go over Connect, with the same token.
const bearer: Interceptor = (next) => (request) => {
  request.header.set("Authorization", `Bearer ${token}`);
  return next(request);
};
const unaryTransport = createConnectTransport({ baseUrl, interceptors: [bearer] });
const chat = createClient(ChatService, createSseTransport({ baseUrl, token, unaryTransport }));
const { message: sent } = await chat.send({ room: "lobby", text: "hello over SSE" });
// Recent history, then live messages. Stop at the one just sent.
const stop = new AbortController(); // connect-es ends a stream on abort, not on break
for await (const response of chat.subscribe({ room: "lobby", history: 10 }, { signal: stop.signal })) {
  if (response.event.case === "message") console.log(`${response.event.value.author}: ${response.event.value.text}`);
  if (response.cursor === sent?.cursor) break;
}
stop.abort();
