// Runs under plain Node in a project that installed only the packed
// @rivulet/client and its peers (client-package.test.ts copies it there).
// It prints one line per step; the test compares them exactly.
/* global AbortController */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { ChatService, createSseTransport, createWebSocketTransport, isRetryable, retryableCodes } from "@rivulet/client";
import { ChatService as ChatServiceFromSubpath } from "@rivulet/client/chat";

const { RIVULET_URL: baseUrl, RIVULET_TOKEN: token, ROOM: room } = process.env;
console.log(`one ChatService descriptor: ${ChatService === ChatServiceFromSubpath}`);
console.log(`retryable: ${retryableCodes.map((code) => Code[code]).join(", ")}; unavailable ${isRetryable(new ConnectError("", Code.Unavailable))}`);

const transport = createWebSocketTransport({ url: `${baseUrl.replace(/^http/, "ws")}/ws?access_token=${token}` });
const chat = createClient(ChatService, transport);
const { message: one } = await chat.send({ room, text: "one" });
const { message: two } = await chat.send({ room, text: "two" });

// Subscribe: history, then a message sent once the stream is live.
let sentThree;
for await (const response of chat.subscribe({ room, history: 10 })) {
  console.log(`websocket: ${response.event.value.author}: ${response.event.value.text}`);
  if (response.cursor === two.cursor) sentThree = (await chat.send({ room, text: "three" })).message;
  if (response.cursor === sentThree?.cursor) break;
}

// Resume from a cursor: what came after "one", over WebSocket and over SSE.
for await (const response of chat.subscribe({ room, cursor: one.cursor })) {
  console.log(`websocket from one's cursor: ${response.event.value.text}`);
  if (response.cursor === sentThree.cursor) break;
}
const sse = createClient(ChatService, createSseTransport({ baseUrl, token }));
const stop = new AbortController();
for await (const response of sse.subscribe({ room, cursor: one.cursor }, { signal: stop.signal })) {
  console.log(`sse from one's cursor: ${response.event.value.text}`);
  if (response.cursor === sentThree.cursor) break;
}
stop.abort();
transport.close();
