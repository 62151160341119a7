/**
 * Room names, as server and clients both read them (DESIGN.md, "Rooms a team
 * can ship"): 1 to 200 characters of letters, digits and `-_.:#,@`. By
 * convention a `namespace:` prefix groups rooms (`team-42:general`).
 */
export const roomNameMax = 200;

const roomNamePattern = /^[A-Za-z0-9\-_.:#,@]+$/;

/** Whether `name` is a valid room name. */
export function isRoomName(name: string): boolean {
  return name.length > 0 && name.length <= roomNameMax && roomNamePattern.test(name);
}

/**
 * The users a user-limited room is for, or undefined for any other room. A
 * name with a `#` is user-limited: the part after its last `#` is a
 * comma-separated list of user ids (`dm#alice,bob`, `support#42`), and only
 * they may read and write it, whatever else says. Empty items name nobody,
 * so a name built from missing ids (`dm#`, `dm#,`) is nobody's room rather
 * than an open one.
 */
export function usersOfRoom(name: string): readonly string[] | undefined {
  const hash = name.lastIndexOf("#");
  if (hash < 0) return undefined;
  return name
    .slice(hash + 1)
    .split(",")
    .filter((user) => user !== "");
}
