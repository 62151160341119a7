import { Code, ConnectError } from "@connectrpc/connect";
import type { OpenCall } from "../call/open-calls.js";
import { timerAt } from "../limits/timer-at.js";
import { usersOfRoom } from "../wire/room-name.js";
import type { Identity } from "./identity.js";
import type { RoomAuthorizerClient } from "./room-authorizer.js";
import type { RoomAction } from "./room-grants.js";

/** The soonest an open stream asks the backend again, whatever ttl it answered (0 included). */
const minRecheckMs = 1000;

export interface RoomAccessOptions {
  /** `--rooms-default`: whether a room nothing else decides is open. */
  readonly defaultAllow: boolean;
  /** `--authorize-url`'s client, when one is configured. */
  readonly authorizer?: RoomAuthorizerClient;
  /** Milliseconds since the Unix epoch (tests pass a fake clock). */
  readonly now?: () => number;
}

/**
 * Who may read and write a room, decided here and nowhere else: every method
 * that touches a room asks before it does, whatever transport carried it
 * (docs/security.md, "Rooms and access"). The first source that speaks
 * decides:
 *
 * 1. a user-limited room (`dm#alice,bob`): its users, and nobody else;
 * 2. the token's `rooms` claim, when a pattern grants the action (it only
 *    grants: a pattern that lists `read` alone leaves `write` to what follows);
 * 3. the application's backend, when `--authorize-url` is set: its answer,
 *    allow or deny; a failure is `unavailable`, never an allow;
 * 4. `--rooms-default`.
 */
export class RoomAccess {
  private readonly now: () => number;

  constructor(private readonly options: RoomAccessOptions) {
    this.now = options.now ?? (() => Date.now());
  }

  /**
   * Resolves when `identity` may do `action` in `room`, to when the grant must
   * be asked for again (a backend answer's ttl; Infinity when it holds as long
   * as the token). Rejects with `permission_denied`, or `unavailable` when the
   * backend cannot answer.
   */
  async check(identity: Identity, room: string, action: RoomAction): Promise<number> {
    const users = usersOfRoom(room);
    if (users !== undefined) {
      if (users.includes(identity.userId)) return Infinity;
      throw denied(room, action);
    }
    if (identity.rooms?.grants(room, action)) return Infinity;
    if (this.options.authorizer) {
      const answer = await this.options.authorizer.ask(identity, room, action);
      if (!answer.allowed) throw denied(room, action);
      return answer.until;
    }
    if (this.options.defaultAllow) return Infinity;
    throw denied(room, action);
  }

  /**
   * Keeps an open stream's grant checked: at `recheckAt` (what `check`
   * resolved to) and at each later answer's end, asks again, and ends the
   * call with the refusal (`permission_denied`, or `unavailable` when the
   * backend fails) once the grant is gone. Returns the function that stops
   * checking, to call when the stream ends.
   */
  keepChecking(identity: Identity, room: string, action: RoomAction, recheckAt: number, call: OpenCall): () => void {
    let cancel: () => void = () => undefined;
    let stopped = false;
    const arm = (at: number) => {
      if (stopped) return;
      cancel = timerAt(Math.max(at, this.now() + minRecheckMs), () => {
        this.check(identity, room, action).then(arm, (error: unknown) => {
          if (!stopped) call.end(ConnectError.from(error));
        });
      });
    };
    arm(recheckAt);
    return () => {
      stopped = true;
      cancel();
    };
  }
}

function denied(room: string, action: RoomAction): ConnectError {
  return new ConnectError(`not allowed to ${action} room "${room}"`, Code.PermissionDenied);
}
