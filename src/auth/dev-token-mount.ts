import type { Mount } from "../http/mount.js";
import { sendText } from "../http/write-head.js";
import type { TokenMinter } from "./tokens.js";

/** GET /dev/token?user=alice&roles=publisher,worker[&cookie=1]: mints a token (and sets it as a cookie). Mounted only in development mode. */
export function createDevTokenMount(tokens: TokenMinter): Mount {
  return {
    handle(req, res, url) {
      if (url.pathname !== "/dev/token" || req.method !== "GET") return false;
      const user = url.searchParams.get("user") ?? "";
      const roles = (url.searchParams.get("roles") ?? "").split(",").filter(Boolean);
      if (!/^[\x21-\x7e]{1,128}$/.test(user) || roles.some((r) => !/^[a-z_-]{1,32}$/.test(r))) {
        sendText(res, 400, "give ?user=<1 to 128 printable characters> and optionally &roles=publisher,worker\n");
        return true;
      }
      const ttlSeconds = 24 * 3600;
      void tokens.mint({ userId: user, roles, ttlSeconds }).then((token) => {
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
