// The browser side of browser.test.ts, bundled by esbuild at test time: the
// generated ChatService client over createWebSocketTransport, with the
// browser's own WebSocket. It reports to the test through `window.report`
// (a playwright binding), so the test waits on events, never on sleeps.
import { createClient } from "@connectrpc/connect";
import { ChatService } from "../../../gen/rivulet/chat/v1/chat_pb.js";
import { createWebSocketTransport } from "../../../src/client/websocket-transport.js";

/** What the page reports to the test. */
export type PageEvent =
  | { readonly kind: "state"; readonly state: string }
  | { readonly kind: "message"; readonly text: string; readonly cursor: string }
  | { readonly kind: "error"; readonly code: number; readonly message: string };

declare global {
  interface Window {
    report(event: PageEvent): Promise<void>;
    rivulet: {
      subscribe(room: string): void;
      send(room: string, text: string): Promise<string>;
    };
  }
}

const params = new URLSearchParams(location.search);
// A browser cannot set headers on the handshake: the token rides in `access_token`.
const url = `${params.get("ws") ?? ""}?access_token=${encodeURIComponent(params.get("token") ?? "")}`;
const transport = createWebSocketTransport({
  url,
  backoffInitialMs: 50,
  backoffMaxMs: 500,
  onStateChange: (state) => void window.report({ kind: "state", state }),
});
const chat = createClient(ChatService, transport);

window.rivulet = {
  subscribe(room) {
    void (async () => {
      try {
        for await (const response of chat.subscribe({ room, history: 1 })) {
          if (response.event.case === "message") await window.report({ kind: "message", text: response.event.value.text, cursor: response.cursor });
        }
      } catch (error) {
        const { code, rawMessage } = error as { code: number; rawMessage: string };
        await window.report({ kind: "error", code, message: rawMessage });
      }
    })();
  },
  async send(room, text) {
    const { message } = await chat.send({ room, text });
    return message?.id ?? "";
  },
};
