// The browser side of queued-writes-browser.test.ts, bundled by esbuild at
// test time: ChatService over createWebSocketTransport with an IndexedDB
// outbox, created as the page loads. It reports every onQueueChange count,
// and the transport's queuedWrites with it, through `window.report` (a
// playwright binding): the test waits on those, never on sleeps.
import { createClient } from "@connectrpc/connect";
import { ChatService } from "../../../gen/rivulet/chat/v1/chat_pb.js";
import { createIndexedDbOutbox } from "../../../src/client/indexeddb-outbox.js";
import { createWebSocketTransport } from "../../../src/client/websocket-transport.js";

/** What the page reports to the test. */
export type QueuedWritesPageEvent =
  | { readonly kind: "queue"; readonly count: number; readonly queuedWrites: number }
  | { readonly kind: "sent"; readonly text: string }
  | { readonly kind: "error"; readonly code: number; readonly message: string };

declare global {
  interface Window {
    report(event: QueuedWritesPageEvent): Promise<void>;
    queuedWritesPage: {
      /** Starts a send and returns at once: its outcome is reported when the server answers. */
      send(room: string, text: string): void;
    };
  }
}

const params = new URLSearchParams(location.search);
const transport = createWebSocketTransport({
  url: `${params.get("ws") ?? ""}?access_token=${encodeURIComponent(params.get("token") ?? "")}`,
  backoffInitialMs: 50,
  backoffMaxMs: 500,
  outbox: createIndexedDbOutbox(params.get("outbox") ?? "test"),
  onQueueChange: (count) => void window.report({ kind: "queue", count, queuedWrites: transport.queuedWrites }),
});
const chat = createClient(ChatService, transport);

window.queuedWritesPage = {
  send(room, text) {
    chat.send({ room, text }).then(
      () => window.report({ kind: "sent", text }),
      (error: { code: number; rawMessage: string }) => window.report({ kind: "error", code: error.code, message: error.rawMessage }),
    );
  },
};
