/** What one heartbeat round does to a socket. */
export type LivenessVerdict =
  /** The peer answered since the last round: ping it again. */
  | "ping"
  /** The peer has not answered, but frames it has not read may stand between it and the ping: wait. */
  | "wait"
  /** The peer has not answered and nothing was sent to it: it is gone (cut without a frame). */
  | "terminate"
  /** The peer has not read for the stall limit: close it, telling it why. */
  | "too-slow";

/** The liveness state of one socket, advanced by the shared heartbeat timer. */
export interface WebSocketLiveness {
  /** The peer showed it is there: a frame or a pong arrived from it. */
  heard(): void;
  /**
   * One heartbeat round. `receiving`: frames were sent to the peer since it
   * last answered, or bytes for it still wait in the server's buffers (the
   * kernel's are full), so the ping may be stuck behind what it has not read.
   */
  round(now: number, receiving: boolean): LivenessVerdict;
}

/**
 * Tells a dead peer from one that stopped reading, as far as the server can.
 * Both fail to answer a ping, but a peer that does not read has not even
 * received it, and once it reads again it must find the end of each call
 * (for a lossless stream, `resource_exhausted` after the messages it missed)
 * as it would on any other transport, not an abnormal closure with the reason
 * lost in the server's buffers. So a peer that answers nothing while nothing
 * is sent to it is terminated at the second round, as before; one that frames
 * keep going to is given `stallLimitMs` from its unanswered ping, then closed
 * with a reason. (A dead peer in a busy room looks the same and is held that
 * long too; the bytes held for it are bounded by --ws-max-buffered, since
 * its streams stop being read.)
 */
export function createWebSocketLiveness(stallLimitMs: number): WebSocketLiveness {
  return new Liveness(stallLimitMs);
}

/** One per socket, so a class: two numbers and a flag, its methods on the prototype. */
class Liveness implements WebSocketLiveness {
  private answered = true;
  private unansweredSince = 0;

  constructor(private readonly stallLimitMs: number) {}

  heard(): void {
    this.answered = true;
  }

  round(now: number, receiving: boolean): LivenessVerdict {
    if (this.answered) {
      this.answered = false;
      this.unansweredSince = now;
      return "ping";
    }
    if (!receiving) return "terminate";
    return now - this.unansweredSince >= this.stallLimitMs ? "too-slow" : "wait";
  }
}
