import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { openConnection, type Connection } from "./connection.js";
import { byId, element } from "./dom.js";
import { follow } from "./follow.js";
import { withFreshToken, type Identity } from "./identity.js";
import type { Panel, PanelHost } from "./panel.js";
import { NotificationService, type Notification, type NotificationsResponse } from "./rivulet.js";

/** Notifications a fresh view replays; later ones arrive live. */
const historySize = 20;

/**
 * The notifications panel in #notifications: the tab user's notifications,
 * newest first, and a form that sends one to any user.
 *
 * Subscribe needs no role (each user reads only their own), but Publish needs
 * the `publisher` role, which in production belongs to a backend, not to a
 * browser. The page's own tokens carry no role; this panel mints a second
 * development token with `publisher` for its form alone, and sends it on a
 * connection of its own over the picked transport (on the WebSocket a token
 * belongs to the transport, so it cannot ride along with the page's calls).
 */
export function createNotificationsPanel(host: PanelHost): Panel {
  const list = byId<HTMLOListElement>("notification-list");
  const form = byId<HTMLFormElement>("notify-form");
  const fields = byId<HTMLFieldSetElement>("notify-fields");
  const to = byId<HTMLInputElement>("notify-to");
  const title = byId<HTMLInputElement>("notify-title");
  const body = byId<HTMLInputElement>("notify-body");
  const sent = byId("notify-sent");
  const me = host.identity.user;
  const publisherIdentity = createPublisherIdentity(me);

  let streams = new AbortController();
  let connection: Connection | undefined;
  // Publish's connection, opened on the first send over the transport in use.
  let publishing: Connection | undefined;
  let cursor = "";

  list.replaceChildren();
  sent.textContent = "";
  if (to.value === "") to.value = me;

  const fail = (what: string) => (error: unknown) => host.onError(`${what}: ${ConnectError.from(error).message}`);

  const onResponse = (response: NotificationsResponse, signal: AbortSignal) => {
    // A response still in flight on a replaced stream: the new one resumes from `cursor`, which it did not move.
    if (signal.aborted) return;
    if (response.cursor !== "") cursor = response.cursor;
    const event = response.event;
    switch (event.case) {
      case "notification":
        list.prepend(notificationItem(event.value));
        break;
      case "gap":
        list.prepend(element("li", `some notifications are no longer available (${event.value.reason})`, "note"));
        break;
      case undefined:
        break;
    }
  };

  const start = (current: Connection) => {
    const signal = streams.signal;
    const notifications = createClient(NotificationService, current.transport);
    void follow({
      signal,
      onState: host.onState,
      forgetToken: () => host.identity.forget(),
      // History only for a fresh view: a resumed stream continues after the last notification shown.
      open: (s) => notifications.subscribe({ cursor, history: cursor === "" ? historySize : 0 }, { signal: s }),
      onResponse: (response) => onResponse(response, signal),
      onFatal: fail("notifications"),
    });
  };

  const publish = async (request: { userId: string; title: string; body: string; idempotencyKey: string }) => {
    if (!connection) throw new ConnectError("not connected", Code.Unavailable);
    // Its state is not the page's: the page shows its streams' state, and a failed send shows its error.
    publishing ??= openConnection(connection.kind, publisherIdentity, { onState: () => undefined, onQueue: () => undefined });
    const client = createClient(NotificationService, publishing.transport);
    const send = () => client.publish({ ...request, kind: "demo.message", data: { from: me } });
    return withFreshToken(publisherIdentity, send);
  };

  const onSubmit = (event: SubmitEvent) => {
    event.preventDefault();
    const request = { userId: to.value, title: title.value, body: body.value };
    // One key per notification written: a send retried after a dropped socket is published once.
    publish({ ...request, idempotencyKey: crypto.randomUUID() }).then(() => {
      sent.textContent = `Sent “${request.title}” to ${request.userId} at ${new Date().toLocaleTimeString()}.`;
      if (title.value === request.title && body.value === request.body) {
        title.value = "";
        body.value = "";
      }
    }, fail("send notification"));
  };
  form.addEventListener("submit", onSubmit);
  fields.disabled = false;

  return {
    attach(next) {
      streams.abort();
      streams = new AbortController();
      connection = next;
      // Publish follows the page onto the new transport too.
      publishing?.close();
      publishing = undefined;
      start(next);
    },
    leave() {
      streams.abort();
      connection = undefined;
      publishing?.close();
      publishing = undefined;
      form.removeEventListener("submit", onSubmit);
      fields.disabled = true;
    },
  };
}

/** One notification: its title and body, then its kind, sender (as the publisher put it in `data.from`) and time. */
function notificationItem(notification: Notification): HTMLLIElement {
  const item = document.createElement("li");
  item.dataset.cursor = notification.cursor;
  item.dataset.id = notification.id;
  const sentAt = notification.createdAt ? new Date(Number(notification.createdAt.seconds) * 1000) : undefined;
  const meta = element("span", "", "meta");
  const from = notification.data.from;
  meta.append(notification.kind, from ? ` · from ${from}` : "");
  if (sentAt) {
    const time = document.createElement("time");
    time.dateTime = sentAt.toISOString();
    time.textContent = sentAt.toLocaleTimeString();
    time.title = sentAt.toLocaleString();
    meta.append(" · ", time);
  }
  item.append(element("strong", notification.title));
  if (notification.body !== "") item.append(element("p", notification.body));
  item.append(meta);
  return item;
}

/**
 * The tab's user with the `publisher` role, minted at development mode's
 * /dev/token like the page's own identity (web/src/identity.ts), for Publish
 * only, and minted again when the server refuses it.
 */
function createPublisherIdentity(user: string): Identity {
  let pending: Promise<string> | undefined;
  return {
    user,
    token() {
      pending ??= mintPublisherToken(user).catch((error: unknown) => {
        pending = undefined;
        throw error;
      });
      return pending;
    },
    forget() {
      pending = undefined;
    },
  };
}

async function mintPublisherToken(user: string): Promise<string> {
  const response = await fetch(`/dev/token?user=${encodeURIComponent(user)}&roles=publisher`, { cache: "no-store" });
  if (response.status === 404) throw new Error("this server has no /dev/token: it runs with real credentials (--auth-secret), which the demo cannot mint");
  if (!response.ok) throw new Error(`/dev/token answered ${response.status}: ${(await response.text()).trim()}`);
  return response.text();
}
