import type { ConnectError } from "@connectrpc/connect";

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
  private target: ((reason: ConnectError) => void) | undefined;

  constructor(
    readonly userId: string,
    private readonly registry: OpenCalls,
  ) {}

  /** Ends the call with `reason` (once; later reasons are ignored). A stream ends at once, or as soon as it starts; a unary call is left to finish. */
  end(reason: ConnectError): void {
    if (this.reason) return;
    this.reason = reason;
    this.target?.(reason);
  }

  /** Says who ends the stream from now on; called at once when the call was already ended. */
  endVia(target: (reason: ConnectError) => void): void {
    this.target = target;
    if (this.reason) target(this.reason);
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
  private readonly byUser = new Map<string, Set<OpenCall>>();

  /** Registers a call of the user; the caller closes it when the call ends. */
  open(userId: string): OpenCall {
    const call = new OpenCall(userId, this);
    let calls = this.byUser.get(userId);
    if (calls === undefined) this.byUser.set(userId, (calls = new Set()));
    calls.add(call);
    return call;
  }

  /** Ends every open call of the user on this instance with `reason`; returns how many there were. */
  endUser(userId: string, reason: ConnectError): number {
    const calls = this.byUser.get(userId);
    if (calls === undefined) return 0;
    const count = calls.size;
    for (const call of [...calls]) call.end(reason);
    return count;
  }

  /** How many calls are open on this instance. */
  get size(): number {
    let size = 0;
    for (const calls of this.byUser.values()) size += calls.size;
    return size;
  }

  /** @internal OpenCall.close */
  remove(call: OpenCall): void {
    const calls = this.byUser.get(call.userId);
    if (calls === undefined) return;
    calls.delete(call);
    if (calls.size === 0) this.byUser.delete(call.userId);
  }
}
