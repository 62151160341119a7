import type { ConnectError } from "@connectrpc/connect";

/** What ends a call's stream: the stream guard's wait, then the stream itself once it detaches (an object, so an idle stream needs no closure for it). */
export interface CallEnder {
  fail(reason: ConnectError): void;
}

/**
 * One authenticated call open on this instance, as the registry of open calls
 * sees it: whose it is, and how to end it now. Small on purpose: a stream that
 * outlives its handler keeps its entry for as long as it is open, and the
 * entry must not hold the call's context (what it ends through is swapped
 * from the stream guard to the stream itself when the stream detaches).
 */
export class OpenCall {
  /** Why the call was ended from outside, once it was. */
  private reason: ConnectError | undefined;
  /** Whoever runs the call's stream now; undefined for a unary call or a stream not started. */
  private target: CallEnder | undefined;

  constructor(
    readonly userId: string,
    private readonly registry: OpenCalls,
  ) {}

  /** Ends the call with `reason` (once; later reasons are ignored). A stream ends at once, or as soon as it starts; a unary call is left to finish. */
  end(reason: ConnectError): void {
    if (this.reason) return;
    this.reason = reason;
    this.target?.fail(reason);
  }

  /** Says who ends the stream from now on; told at once when the call was already ended. */
  endVia(target: CallEnder): void {
    this.target = target;
    if (this.reason) target.fail(this.reason);
  }

  /** The call is over: it leaves the registry and forgets its stream. */
  close(): void {
    this.target = undefined;
    this.registry.remove(this);
  }
}

/**
 * The authenticated calls open on this instance, by user: what the server
 * API's `Disconnect` ends (on every instance, each ending its own).
 */
export class OpenCalls {
  /** A user's one call as itself, more as a set: most users hold one stream per instance, and a set costs a hundred bytes or more. */
  private readonly byUser = new Map<string, OpenCall | Set<OpenCall>>();

  /** Registers a call of the user; the caller closes it when the call ends. */
  open(userId: string): OpenCall {
    const call = new OpenCall(userId, this);
    const calls = this.byUser.get(userId);
    if (calls === undefined) this.byUser.set(userId, call);
    else if (calls instanceof Set) calls.add(call);
    else this.byUser.set(userId, new Set([calls, call]));
    return call;
  }

  /** Ends every open call of the user on this instance with `reason`; returns how many there were. */
  endUser(userId: string, reason: ConnectError): number {
    const calls = this.byUser.get(userId);
    if (calls === undefined) return 0;
    if (!(calls instanceof Set)) {
      calls.end(reason);
      return 1;
    }
    const count = calls.size;
    for (const call of [...calls]) call.end(reason);
    return count;
  }

  /** How many calls are open on this instance. */
  get size(): number {
    let size = 0;
    for (const calls of this.byUser.values()) size += calls instanceof Set ? calls.size : 1;
    return size;
  }

  /** @internal OpenCall.close */
  remove(call: OpenCall): void {
    const calls = this.byUser.get(call.userId);
    if (calls === call) this.byUser.delete(call.userId);
    else if (calls instanceof Set) {
      calls.delete(call);
      if (calls.size === 0) this.byUser.delete(call.userId);
    }
  }
}
