// The demo app at GET /: the chat of one room, the user's notifications,
// demo jobs and the assistant, over a transport the user picks, with the
// connection's state, the last cursor and every error on the page. Bundled
// by scripts/build-web.mjs into web/dist/app.js.
import { createAssistantPanel } from "./assistant-panel.js";
import { createChatPanel } from "./chat-panel.js";
import { openConnection, transportLabels, type Connection, type TransportKind } from "./connection.js";
import { byId } from "./dom.js";
import { createIdentity, joinedBefore, rememberedUser, type Identity } from "./identity.js";
import { createJobsPanel } from "./jobs-panel.js";
import { describeLinkState, type LinkState } from "./link-state.js";
import { createNotificationsPanel } from "./notifications-panel.js";
import type { Panel, PanelHost } from "./panel.js";

const joinForm = byId<HTMLFormElement>("join");
const userField = byId<HTMLInputElement>("user");
const roomField = byId<HTMLInputElement>("room");
const picker = byId<HTMLSelectElement>("transport");
const stateLine = byId("state");
const cursorLine = byId("cursor");
const statusLine = byId("status");

let identity: Identity | undefined;
let connection: Connection | undefined;
let panels: readonly Panel[] = [];
let linkState: LinkState = { kind: "offline", reason: "not joined" };
/** Writes waiting in the WebSocket's outbox (sent once the socket is back, even after a reload). */
let queuedWrites = 0;
let countdown: ReturnType<typeof setInterval> | undefined;

userField.value = rememberedUser();
const query = new URLSearchParams(location.search);
roomField.value = query.get("room") ?? "lobby";
for (const option of picker.options) option.textContent = transportLabels[option.value as TransportKind];
const pickedBefore = query.get("transport");
if (pickedBefore !== null && pickedBefore in transportLabels) picker.value = pickedBefore;
// Browsers speak HTTP/2 only over TLS: on an https page, fetch negotiates it by itself.
byId("transport-note").textContent =
  location.protocol === "https:"
    ? "Connect-Web uses HTTP/2 when the server offers it over TLS."
    : "Connect-Web runs over HTTP/1.1 here: browsers use HTTP/2 only on https pages.";

/**
 * The HTTP version the page's requests to the server actually used (the Resource Timing API's
 * `nextHopProtocol`: "h2" or "http/1.1"), so the transport note's promise can be checked by eye.
 */
const protocolLine = byId("protocol");
new PerformanceObserver((entries) => {
  for (const entry of entries.getEntries() as PerformanceResourceTiming[]) {
    if (new URL(entry.name).origin === location.origin && entry.nextHopProtocol) protocolLine.textContent = entry.nextHopProtocol;
  }
}).observe({ type: "resource", buffered: true });

function showState(state: LinkState) {
  linkState = navigator.onLine ? state : { kind: "offline", reason: "the browser is offline" };
  const render = () => {
    stateLine.textContent = describeLinkState(linkState, Date.now(), queuedWrites);
    stateLine.dataset.state = linkState.kind;
    stateLine.dataset.queued = String(queuedWrites);
  };
  render();
  clearInterval(countdown);
  if (linkState.kind === "reconnecting" && linkState.at !== undefined) countdown = setInterval(render, 200);
}

/** The status line: what went wrong last, with the time, so it is never swallowed. */
function showError(message: string) {
  statusLine.textContent = `${new Date().toLocaleTimeString()}: ${message}`;
  statusLine.dataset.kind = "error";
}

/** A connection on the picked transport, for the current identity; states from an older one are ignored. */
function connect(who: Identity): Connection {
  connection?.close();
  connection = undefined;
  const current: Connection = openConnection(
    picker.value as TransportKind,
    who,
    {
      onState: (state) => {
        if (connection === current) showState(state);
      },
      onQueue: (count) => {
        // Told once while opening, before `connection` is this one.
        if (connection !== undefined && connection !== current) return;
        queuedWrites = count;
        showState(linkState);
      },
    },
    // One outbox per user name: a reload (or another tab of the same user) sends what an earlier page queued.
    { outbox: `rivulet-demo-${who.user}` },
  );
  connection = current;
  showState({ kind: "connecting" });
  return current;
}

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  for (const panel of panels) panel.leave();
  statusLine.textContent = "";
  cursorLine.textContent = "none yet";
  identity = createIdentity(userField.value);
  const room = roomField.value;
  const host: PanelHost = { identity, onState: (state) => showState(state), onError: showError };
  panels = [
    createChatPanel(room, { ...host, onCursor: (cursor) => (cursorLine.textContent = cursor) }),
    createNotificationsPanel(host),
    createJobsPanel(host),
    createAssistantPanel(host),
  ];
  const current = connect(identity);
  for (const panel of panels) panel.attach(current);
  rememberInUrl({ room, transport: picker.value });
});

/** Keeps the room and transport in the address, so a reload (or a shared link) opens the same view. */
function rememberInUrl(values: Record<string, string>) {
  const url = new URL(location.href);
  for (const [name, value] of Object.entries(values)) url.searchParams.set(name, value);
  history.replaceState(null, "", url);
}

picker.addEventListener("change", () => {
  // Live: the panel resumes its streams on the new transport from its last cursor.
  rememberInUrl({ transport: picker.value });
  if (!identity) return;
  const current = connect(identity);
  for (const panel of panels) panel.attach(current);
});

addEventListener("offline", () => showState(linkState));
addEventListener("online", () => showState({ kind: "reconnecting" }));
addEventListener("unhandledrejection", (event) => showError(`unexpected: ${String(event.reason)}`));
// A reload joins again as the same user, room and transport: the panels resume their streams from what they kept.
if (joinedBefore()) joinForm.requestSubmit();
