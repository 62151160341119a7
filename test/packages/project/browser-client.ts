// The browser side of client-package.test.ts: copied into the project that
// installed the packed @rivulet/client, bundled there by esbuild, and run in
// headless Chromium from a page on its own loopback origin. `window.chatOver` subscribes
// and sends over one transport and resolves with the lines it saw.
import { createClient } from "@connectrpc/connect";
import { ChatService, createSseTransport, createWebSocketTransport } from "@rivulet/client";

declare global {
  interface Window {
    chatOver(transport: "websocket" | "sse", baseUrl: string, token: string, room: string): Promise<string[]>;
  }
}

window.chatOver = async (kind, baseUrl, token, room) => {
  const websocket = createWebSocketTransport({ url: `${baseUrl.replace(/^http/, "ws")}/ws?access_token=${encodeURIComponent(token)}` });
  // SSE carries no unary calls: Send goes over the WebSocket transport.
  const transport = kind === "websocket" ? websocket : createSseTransport({ baseUrl, token, unaryTransport: websocket });
  const chat = createClient(ChatService, transport);
  const lines: string[] = [];
  await chat.send({ room, text: `sent before subscribing over ${kind}` });
  const stop = new AbortController();
  try {
    let sent: string | undefined;
    for await (const response of chat.subscribe({ room, history: 10 }, { signal: stop.signal })) {
      if (response.event.case !== "message") continue;
      lines.push(`${response.event.value.author}: ${response.event.value.text}`);
      // History arrived, so the stream is live: a send now must come back on it.
      sent ??= (await chat.send({ room, text: `sent while subscribed over ${kind}` })).message?.cursor;
      if (response.cursor === sent) break;
    }
  } finally {
    stop.abort();
    websocket.close();
  }
  return lines;
};
