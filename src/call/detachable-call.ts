import type { DetachedStream, ResponseSink } from "./response-sink.js";

/**
 * The part of a transport's call record that every transport shares: the
 * call's signal while its handler runs, and the hand-over to a stream that
 * detaches (`ResponseSink.detach`). A transport extends it with its own
 * writing (`send`, `congested`, `drained`) and says in `ended` how its call
 * ends; it calls `pulled` once the handler's iterator is done and `cancel`
 * when the call ends on its side.
 *
 * The stream may end (`end`) before the handler has returned (a stream
 * refused at once, a cancel during setup): the end is kept and applied once
 * `pulled` says the handler is done, so a transport ends each call once,
 * after its handler.
 */
export abstract class DetachableCall implements Pick<ResponseSink, "signal" | "detach" | "end"> {
  /** The stream that outlived its handler. */
  private stream: DetachedStream | undefined = undefined;
  /** While the handler runs the call: aborted when the call ends on the transport's side. Dropped once the stream detached and the handler returned. */
  private controller: AbortController | undefined = new AbortController();
  /** The detached stream's end, when it came before the handler returned. */
  private endedEarly: { error: unknown } | undefined = undefined;
  private pulling = true;
  /** Whether `ended` ran: a stream may still end after the handler's loop gave up on a closed response. */
  private finished = false;

  /** The call ended (`error` undefined: it completed): the transport ends its response. Called once. */
  protected abstract ended(error: unknown): void;

  get signal(): AbortSignal {
    return (this.controller ??= new AbortController()).signal;
  }

  detach(stream: DetachedStream): void {
    this.stream = stream;
  }

  end(error?: unknown): void {
    if (this.pulling) this.endedEarly = { error };
    else this.finish(error);
  }

  /** The handler's iterator is done: `completed` if it finished, else `failure` (or the transport stopped reading). */
  pulled(completed: boolean, failure: unknown): void {
    this.pulling = false;
    if (!completed || this.stream === undefined) return this.finish(failure);
    if (this.endedEarly) return this.finish(this.endedEarly.error);
    // Detached and still open: the signal served the handler only.
    if (!this.controller?.signal.aborted) this.controller = undefined;
  }

  private finish(error: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.ended(error);
  }

  /** The call ended on the transport's side (a cancel, the client gone, shutdown): ends it in the handler or in its detached stream. */
  cancel(reason: unknown): void {
    this.controller?.abort(reason);
    this.stream?.cancel(reason);
  }
}
