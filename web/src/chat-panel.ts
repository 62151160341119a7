import { Code, ConnectError } from "@connectrpc/connect";
import type { Connection } from "./connection.js";
import { byId, element } from "./dom.js";
import { follow } from "./follow.js";
import { withFreshToken, type Identity } from "./identity.js";
import type { LinkState } from "./link-state.js";
import type { ChatMessage, SubscribeResponse, WatchPresenceResponse } from "./rivulet.js";
import { createTypingIndicator, throttle } from "./typing.js";

/** Messages a fresh view asks for; older ones come a page at a time. */
const historyPage = 20;

/** What the chat panel needs from the page around it. */
export interface ChatPanelHost {
  readonly identity: Identity;
  onState(state: LinkState): void;
  /** Shows an error in the status line. */
  onError(error: string): void;
  /** The room's last cursor moved. */
  onCursor(cursor: string): void;
}

/** The chat of one room: its messages (live and paged back), who is present, who is typing, and the send form. */
export interface ChatPanel {
  /**
   * Follows the room's streams on `connection`, from the last cursor seen: a
   * new transport continues where the old one stopped, with nothing missed
   * and nothing twice. The caller closes the old connection.
   */
  attach(connection: Connection): void;
  /** Stops the room's streams and the form. */
  leave(): void;
}

/** Shows `room` in the page's chat elements (#messages, #presence, #typing, #older, #send-form). */
export function createChatPanel(room: string, host: ChatPanelHost): ChatPanel {
  const messages = byId<HTMLOListElement>("messages");
  const presence = byId<HTMLUListElement>("presence");
  const older = byId<HTMLButtonElement>("older");
  const form = byId<HTMLFormElement>("send-form");
  const text = byId<HTMLInputElement>("text");
  const typingLine = byId("typing");
  const typing = createTypingIndicator((sentence) => (typingLine.textContent = sentence));
  const me = host.identity.user;

  let connection: Connection | undefined;
  let streams = new AbortController();
  let cursor = "";
  // The cursor to page back from: the oldest message shown; "" once nothing older remains.
  let before: string | undefined;
  const members = new Set<string>();

  messages.replaceChildren();
  presence.replaceChildren();
  typing.clear();
  older.disabled = true;
  older.textContent = "Older messages";
  byId("room-title").textContent = `#${room}`;

  const messageItem = (message: ChatMessage) => {
    const item = element("li", "");
    item.dataset.cursor = message.cursor;
    item.title = message.sentAt ? new Date(Number(message.sentAt.seconds) * 1000).toLocaleString() : "";
    item.append(element("strong", message.author), `: ${message.text}`);
    return item;
  };

  const onSubscribe = (response: SubscribeResponse) => {
    const event = response.event;
    if (response.cursor !== "") host.onCursor((cursor = response.cursor));
    switch (event.case) {
      case "message": {
        const stuck = messages.scrollTop + messages.clientHeight >= messages.scrollHeight - 8;
        messages.append(messageItem(event.value));
        if (stuck) messages.scrollTop = messages.scrollHeight;
        if (before === undefined) {
          before = event.value.cursor;
          older.disabled = false;
        }
        typing.stopped(event.value.author);
        break;
      }
      case "gap":
        messages.append(element("li", `some messages are no longer available (${event.value.reason})`, "note"));
        break;
      case "signal":
        if (event.value.kind === "typing" && event.value.userId !== me) typing.typing(event.value.userId);
        break;
      case undefined:
        break;
    }
  };

  let firstPresence = true;
  const onPresence = (response: WatchPresenceResponse) => {
    // The first response of each (re)opened watch is the whole list; later ones are changes.
    if (firstPresence) members.clear();
    firstPresence = false;
    for (const user of response.members) members.add(user);
    for (const user of response.joined) members.add(user);
    for (const user of response.left) members.delete(user);
    presence.replaceChildren(...[...members].sort().map((user) => element("li", user, user === me ? "me" : undefined)));
  };

  const fail = (what: string) => (error: ConnectError) => host.onError(`${what}: ${error.message}`);

  const start = (current: Connection) => {
    const signal = streams.signal;
    const common = { signal, onState: host.onState, forgetToken: () => host.identity.forget() };
    void follow({
      ...common,
      open: (s) => current.chat.subscribe({ room, cursor, history: cursor === "" ? historyPage : 0, signals: true }, { signal: s }),
      onResponse: onSubscribe,
      onFatal: fail(`#${room}`),
    });
    void follow({
      ...common,
      open: (s) => {
        firstPresence = true;
        return current.chat.watchPresence({ room }, { signal: s });
      },
      onResponse: onPresence,
      onFatal: fail(`presence in #${room}`),
    });
  };

  const call = <T>(run: (current: Connection) => Promise<T>): Promise<T> => {
    const current = connection;
    if (!current) return Promise.reject(new ConnectError("not connected", Code.Unavailable));
    return withFreshToken(host.identity, () => run(current));
  };

  const sendTyping = throttle(() => void call((c) => c.chat.signal({ room, kind: "typing" })).catch(fail("typing signal")));
  const onInput = () => {
    // A typing signal is live or nothing: one held until the socket is back would say so minutes late.
    if (text.value !== "" && connection?.isOpen()) sendTyping();
  };
  const onSubmit = (event: SubmitEvent) => {
    event.preventDefault();
    const value = text.value;
    // One key per message typed: a retried send (a dropped socket) is stored once.
    const idempotencyKey = crypto.randomUUID();
    // Cleared at once: on the WebSocket a message sent while offline waits in the outbox, and the next can be typed.
    text.value = "";
    call((c) => c.chat.send({ room, text: value, idempotencyKey })).catch((error: unknown) => {
      // Not sent: the text comes back unless something new was typed, and the error shows.
      if (text.value === "") text.value = value;
      fail("send")(ConnectError.from(error));
    });
  };
  const onOlder = () => {
    if (!before) return;
    older.disabled = true;
    call((c) => c.chat.history({ room, before, limit: historyPage })).then(
      (page) => {
        messages.prepend(...page.messages.map(messageItem));
        before = page.nextBefore;
        older.disabled = before === "";
        if (before === "") older.textContent = "No older messages";
      },
      (error: unknown) => {
        older.disabled = false;
        fail("older messages")(ConnectError.from(error));
      },
    );
  };
  text.addEventListener("input", onInput);
  form.addEventListener("submit", onSubmit);
  older.addEventListener("click", onOlder);
  byId<HTMLFieldSetElement>("send-fields").disabled = false;

  return {
    attach(next) {
      streams.abort();
      streams = new AbortController();
      connection = next;
      start(next);
    },
    leave() {
      streams.abort();
      connection = undefined;
      text.removeEventListener("input", onInput);
      form.removeEventListener("submit", onSubmit);
      older.removeEventListener("click", onOlder);
      byId<HTMLFieldSetElement>("send-fields").disabled = true;
      typing.clear();
    },
  };
}
