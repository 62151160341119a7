// The browser side of outbox-browser.test.ts, bundled by esbuild at test
// time: ChatService over createWebSocketTransport with an IndexedDB outbox,
// created as the page loads (so a reloaded page replays what the last one
// queued). The store is wrapped to report each put and delete through
// `window.report` (a playwright binding): the test waits on those, never on
// sleeps.
import { createClient } from "@connectrpc/connect";
import { ChatService } from "../../../gen/rivulet/chat/v1/chat_pb.js";
import { createIndexedDbOutbox } from "../../../src/client/indexeddb-outbox.js";
import type { OutboxStore } from "../../../src/client/outbox.js";
import { createWebSocketTransport } from "../../../src/client/websocket-transport.js";

/** What the page reports to the test. */
export type OutboxPageEvent =
  | { readonly kind: "loaded"; readonly locks: boolean; readonly queued: number }
  | { readonly kind: "put" | "delete"; readonly id: number }
  | { readonly kind: "sent"; readonly text: string; readonly messageId: string }
  | { readonly kind: "error"; readonly code: number; readonly message: string }
  | { readonly kind: "outbox-error"; readonly code: number; readonly message: string };

declare global {
  interface Window {
    report(event: OutboxPageEvent): Promise<void>;
    outboxPage: {
      /** Starts a send and returns at once: its outcome is reported when the server answers. */
      send(room: string, text: string): void;
      /** How many entries the outbox holds. */
      queued(): Promise<number>;
    };
  }
}

const params = new URLSearchParams(location.search);
const url = `${params.get("ws") ?? ""}?access_token=${encodeURIComponent(params.get("token") ?? "")}`;
const idb = createIndexedDbOutbox(params.get("outbox") ?? "test");
const store: OutboxStore = {
  name: idb.name,
  async put(entry) {
    const stored = await idb.put(entry);
    await window.report({ kind: "put", id: stored.id });
    return stored;
  },
  list: () => idb.list(),
  async delete(id) {
    await idb.delete(id);
    await window.report({ kind: "delete", id });
  },
};
const queued = async () => (await idb.list()).length;
// Counted before the transport exists, which starts replaying at once.
const queuedAtLoad = queued();
const transport = createWebSocketTransport({
  url,
  backoffInitialMs: 50,
  backoffMaxMs: 500,
  outbox: store,
  onOutboxError: (error) => void window.report({ kind: "outbox-error", code: error.code, message: error.rawMessage }),
});
const chat = createClient(ChatService, transport);

window.outboxPage = {
  send(room, text) {
    chat.send({ room, text }).then(
      ({ message }) => window.report({ kind: "sent", text, messageId: message?.id ?? "" }),
      (error: { code: number; rawMessage: string }) => window.report({ kind: "error", code: error.code, message: error.rawMessage }),
    );
  },
  queued,
};
void queuedAtLoad.then((count) => window.report({ kind: "loaded", locks: "locks" in navigator, queued: count }));
