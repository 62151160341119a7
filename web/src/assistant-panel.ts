import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { byId } from "./dom.js";
import { follow } from "./follow.js";
import { withFreshToken } from "./identity.js";
import type { Panel, PanelHost } from "./panel.js";
import { ChatService, type CompleteResponse } from "./rivulet.js";

type Chat = Client<typeof ChatService>;

/**
 * The tab's completion, kept in sessionStorage after every token: the text
 * and the cursor it ends at are written together, so a reload resumes right
 * after the last token shown, with nothing lost or shown twice. `finish` is
 * the final finish_reason ("" while it runs).
 */
interface Kept {
  readonly user: string;
  readonly completionId: string;
  readonly prompt: string;
  readonly text: string;
  readonly cursor: string;
  readonly finish: string;
  readonly tokens: number;
  /** Why following it failed for good (finish "failed"): the error, with its code. */
  readonly failure?: string;
}

const storageKey = "rivulet-demo-assistant";

function readKept(user: string): Kept | undefined {
  try {
    const kept = JSON.parse(sessionStorage.getItem(storageKey) ?? "null") as Kept | null;
    return kept?.user === user && typeof kept.completionId === "string" ? kept : undefined;
  } catch {
    return undefined;
  }
}

/** What each finish_reason means to the reader (the proto's CompleteResponse.finish_reason). */
const finishes: Readonly<Record<string, { state: string; text: (tokens: number) => string }>> = {
  stop: { state: "done", text: (n) => `done (${n} tokens)` },
  length: { state: "done", text: (n) => `done: cut at the token limit (${n} tokens)` },
  canceled: { state: "canceled", text: (n) => `canceled after ${n} tokens` },
  error: { state: "error", text: (n) => `error: the model failed after ${n} tokens` },
};

/** The assistant panel in #assistant: a completion streamed token by token; cancel; a reload or a transport switch mid-answer resumes it. */
export function createAssistantPanel(host: PanelHost): Panel {
  const form = byId<HTMLFormElement>("ask-form");
  const fields = byId<HTMLFieldSetElement>("ask-fields");
  const promptField = byId<HTMLInputElement>("prompt");
  const askButton = byId<HTMLButtonElement>("ask");
  const cancelButton = byId<HTMLButtonElement>("cancel");
  const askedLine = byId("asked");
  const answer = byId("answer");
  const stateLine = byId("answer-state");
  const user = host.identity.user;

  let chat: Chat | undefined;
  let stream = new AbortController();
  let canceling = false;
  let kept = readKept(user);
  if (!kept) sessionStorage.removeItem(storageKey);

  const showState = (state: string, text: string) => {
    stateLine.dataset.state = state;
    stateLine.textContent = text;
  };
  const running = () => kept !== undefined && kept.finish === "";
  const render = () => {
    cancelButton.disabled = !running() || canceling;
    askButton.disabled = running();
    askedLine.textContent = kept ? kept.prompt : "";
    answer.textContent = kept ? kept.text : "";
    answer.dataset.completionId = kept?.completionId ?? "";
    answer.setAttribute("aria-busy", String(running()));
    if (!kept) showState("idle", "no question yet");
    else if (kept.finish === "failed") showState("error", `error: ${kept.failure ?? "unknown"}`);
    else if (kept.finish !== "") {
      const finish = finishes[kept.finish] ?? { state: "done", text: () => `done (${kept?.finish})` };
      showState(finish.state, finish.text(kept.tokens));
    }
  };
  const keep = (next: Kept) => {
    kept = next;
    sessionStorage.setItem(storageKey, JSON.stringify(next));
    render();
  };

  const onResponse = (response: CompleteResponse) => {
    if (!kept) return;
    const finish = response.finishReason;
    keep({
      ...kept,
      text: kept.text + response.delta,
      cursor: response.cursor,
      finish,
      tokens: response.usage?.completionTokens ?? kept.tokens + (response.delta === "" ? 0 : 1),
    });
    // The last event: the stream ends here, and is not followed again.
    if (finish !== "") stream.abort();
    else if (!canceling) showState("streaming", "streaming…");
  };

  /** The stream failed in a way retrying cannot fix: shown as the answer's final state, and in the status line. */
  const failed = (error: ConnectError) => {
    if (kept) keep({ ...kept, finish: "failed", failure: error.message });
    host.onError(`assistant: ${error.message}`);
  };

  /** Follows the kept completion on `current` from its cursor: after the start event's cursor, or from the start (empty text) before it. */
  const resume = (current: Chat) => {
    stream.abort();
    if (!running()) return;
    const controller = new AbortController();
    stream = controller;
    canceling = false;
    const { signal } = controller;
    showState("streaming", kept?.cursor ? "resuming after the last token…" : "asking…");
    void follow({
      signal,
      open: (s) => {
        const { completionId, prompt, cursor } = kept!;
        // Without a cursor the same id starts the completion once, or replays it from its start: either way onto an empty text.
        return current.complete(cursor ? { completionId, cursor } : { completionId, messages: [{ role: "user", content: prompt }] }, { signal: s });
      },
      onResponse: (response) => {
        // A response an older stream still had buffered: the new one brings it again.
        if (!signal.aborted) onResponse(response);
      },
      // Once the final event came (or the stream was replaced), the ended stream is no reconnect.
      onState: (state) => {
        if (!signal.aborted) host.onState(state);
      },
      onFatal: failed,
      forgetToken: () => host.identity.forget(),
    });
  };

  const call = <T>(run: (current: Chat) => Promise<T>): Promise<T> => {
    const current = chat;
    if (!current) return Promise.reject(new ConnectError("not connected", Code.Unavailable));
    return withFreshToken(host.identity, () => run(current));
  };

  const onSubmit = (event: SubmitEvent) => {
    event.preventDefault();
    if (running() || !chat) return;
    // The id is ours, so it is kept before the first response: a reload at once resumes (or starts) this completion, never a second one.
    keep({ user, completionId: crypto.randomUUID(), prompt: promptField.value, text: "", cursor: "", finish: "", tokens: 0 });
    promptField.value = "";
    resume(chat);
  };
  const onCancel = () => {
    const completionId = kept?.completionId;
    if (!completionId || !running()) return;
    canceling = true;
    cancelButton.disabled = true;
    showState("canceling", "canceling…");
    // The stream then ends with finish_reason "canceled" (or "stop", when the answer was already complete).
    call((c) => c.cancelCompletion({ completionId })).catch((error: unknown) => {
      canceling = false;
      render();
      if (running()) showState("streaming", "streaming…");
      host.onError(`cancel: ${ConnectError.from(error).message}`);
    });
  };

  form.addEventListener("submit", onSubmit);
  cancelButton.addEventListener("click", onCancel);
  fields.disabled = false;
  render();

  return {
    attach(next) {
      chat = createClient(ChatService, next.transport);
      resume(chat);
    },
    leave() {
      stream.abort();
      chat = undefined;
      form.removeEventListener("submit", onSubmit);
      cancelButton.removeEventListener("click", onCancel);
      fields.disabled = true;
    },
  };
}
