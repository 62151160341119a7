import { isRoomName } from "../wire/room-name.js";

/** What a room is used for: `read` (Subscribe, History, WatchPresence) or `write` (Send, Signal). */
export type RoomAction = "read" | "write";

const bitOf: Readonly<Record<RoomAction, number>> = { read: 1, write: 2 };

/** The most patterns one `rooms` claim may hold. */
const maxPatterns = 256;

/**
 * A token's `rooms` claim, parsed: room patterns (an exact name, or a prefix
 * ending in `*`; `*` alone is every room) to the actions they grant. Only a
 * grant: a room no pattern grants the action for is decided further on
 * (docs/security.md, "Rooms and access").
 */
export class RoomGrants {
  private constructor(
    private readonly exact: ReadonlyMap<string, number>,
    private readonly prefixes: readonly (readonly [prefix: string, bits: number])[],
  ) {}

  /** Whether a pattern grants `action` in `room`. */
  grants(room: string, action: RoomAction): boolean {
    const bit = bitOf[action];
    if (((this.exact.get(room) ?? 0) & bit) !== 0) return true;
    for (const [prefix, bits] of this.prefixes) if ((bits & bit) !== 0 && room.startsWith(prefix)) return true;
    return false;
  }

  /**
   * Parses the claim's value: `{ "<pattern>": ["read", "write"], … }`. Returns
   * a message saying what is wrong for anything else, so a backend minting
   * malformed tokens hears about it instead of its users silently losing rooms.
   */
  static parse(value: unknown): RoomGrants | string {
    const wrong = 'must map room patterns (a name, or a prefix ending in "*") to lists of "read" and "write"';
    if (typeof value !== "object" || value === null || Array.isArray(value)) return wrong;
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length > maxPatterns) return `has more than ${maxPatterns} patterns`;
    const exact = new Map<string, number>();
    const prefixes: [string, number][] = [];
    for (const [pattern, actions] of entries) {
      if (!Array.isArray(actions)) return wrong;
      let bits = 0;
      for (const action of actions as unknown[]) {
        if (action !== "read" && action !== "write") return `${wrong}; "${pattern}" lists ${JSON.stringify(action)}`;
        bits |= bitOf[action];
      }
      const prefix = pattern.endsWith("*") ? pattern.slice(0, -1) : undefined;
      if (prefix === undefined ? !isRoomName(pattern) : prefix !== "" && !isRoomName(prefix)) {
        return `${wrong}; "${pattern}" is neither a room name nor a prefix of one followed by "*"`;
      }
      if (prefix === undefined) exact.set(pattern, bits);
      else prefixes.push([prefix, bits]);
    }
    return new RoomGrants(exact, prefixes);
  }
}
