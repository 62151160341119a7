import type { Mount } from "../http/mount.js";
import { sendText } from "../http/write-head.js";
import { RoomGrants, type RoomAction } from "./room-grants.js";
import type { TokenMinter } from "./tokens.js";

/**
 * GET /dev/token?user=alice&roles=publisher,worker[&rooms=<JSON>][&cookie=1]:
 * mints a token (and sets it as a cookie). `rooms` is the token's `rooms`
 * claim as JSON, such as `{"team-42:*":["read","write"]}`. Mounted only in
 * development mode.
 */
export function createDevTokenMount(tokens: TokenMinter): Mount {
  return {
    handle(req, res, url) {
      if (url.pathname !== "/dev/token" || req.method !== "GET") return false;
      const user = url.searchParams.get("user") ?? "";
      const roles = (url.searchParams.get("roles") ?? "").split(",").filter(Boolean);
      const roomsParameter = url.searchParams.get("rooms");
      const rooms = roomsParameter === null ? undefined : parseRooms(roomsParameter);
      if (!/^[\x21-\x7e]{1,128}$/.test(user) || roles.some((r) => !/^[a-z_-]{1,32}$/.test(r)) || typeof rooms === "string") {
        const problem = typeof rooms === "string" ? `rooms ${rooms}\n` : "";
        sendText(
          res,
          400,
          `${problem}give ?user=<1 to 128 printable characters> and optionally &roles=publisher,worker and &rooms={"team-42:*":["read","write"]}\n`,
        );
        return true;
      }
      const ttlSeconds = 24 * 3600;
      void tokens.mint({ userId: user, roles, rooms, ttlSeconds }).then((token) => {
        // ?cookie=1 also sets the cookie browsers send on Connect, SSE and WebSocket
        // calls: HttpOnly (no script reads it), Secure (browsers allow it on
        // http://localhost), SameSite=Strict (no cross-site request carries it).
        if (url.searchParams.get("cookie") === "1") {
          res.setHeader("set-cookie", `access_token=${token}; Path=/; Max-Age=${ttlSeconds}; HttpOnly; Secure; SameSite=Strict`);
        }
        sendText(res, 200, token, "text/plain; charset=utf-8", true);
      });
      return true;
    },
  };
}

/** The `rooms` parameter as the claim to sign, or what is wrong with it. */
function parseRooms(text: string): Record<string, RoomAction[]> | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "is not JSON";
  }
  const grants = RoomGrants.parse(value);
  return typeof grants === "string" ? grants : (value as Record<string, RoomAction[]>);
}
