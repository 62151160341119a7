/** How long "alice is typing" shows after her last typing signal. */
export const typingShownMs = 4000;
/** At most one typing signal per this interval while the user types: signals are cheap but not free (each is a publish). */
export const typingThrottleMs = 2000;

/** Who is typing, from the room's `typing` signals; `onChange` is called whenever the sentence changes. */
export function createTypingIndicator(onChange: (text: string) => void) {
  const until = new Map<string, number>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let shown = "";
  const render = () => {
    const now = Date.now();
    for (const [user, end] of until) if (end <= now) until.delete(user);
    const users = [...until.keys()].sort();
    const text = users.length === 0 ? "" : `${users.join(", ")} ${users.length === 1 ? "is" : "are"} typing…`;
    if (text !== shown) onChange((shown = text));
    clearTimeout(timer);
    if (until.size > 0) timer = setTimeout(render, Math.min(...until.values()) - now);
  };
  return {
    /** `user` sent a typing signal now. */
    typing(user: string) {
      until.set(user, Date.now() + typingShownMs);
      render();
    },
    /** `user`'s message arrived: they stopped typing. */
    stopped(user: string) {
      if (until.delete(user)) render();
    },
    clear() {
      until.clear();
      render();
    },
  };
}

/** A function that calls `send` at most once per `typingThrottleMs`. */
export function throttle(send: () => void): () => void {
  let last = 0;
  return () => {
    const now = Date.now();
    if (now - last < typingThrottleMs) return;
    last = now;
    send();
  };
}
