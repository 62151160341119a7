// A team app's room authorizer: the backend Rivulet asks (--authorize-url) about
// rooms that neither the room's name nor the token's rooms claim decides.
// Plain Node, no dependencies: the Connect protocol with JSON is a POST.
// Run: node examples/team-app/authorizer.mjs (listens on PORT, default 9090)
import { createServer } from "node:http";

// Stands in for the app's database: who is a member of which private room.
const members = new Map([["private:launch", new Set(["alice", "bob"])]]);

createServer((req, res) => {
  const answer = (status, body) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  if (req.method !== "POST" || req.url !== "/rivulet.authz.v1.RoomAuthorizer/Authorize") {
    return answer(404, { code: "unimplemented", message: "no such method" });
  }
  // Only Rivulet may ask: it sends --authorize-token as a bearer token.
  if (process.env.AUTHORIZE_TOKEN && req.headers.authorization !== `Bearer ${process.env.AUTHORIZE_TOKEN}`) {
    return answer(401, { code: "unauthenticated", message: "not Rivulet" });
  }
  let body = "";
  req.setEncoding("utf8").on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    // {"userId":"alice","roles":[],"room":"private:launch","action":"ROOM_ACTION_READ"}
    const { userId, room, action } = JSON.parse(body);
    const isMember = members.get(room)?.has(userId) ?? false;
    // Members read and write their private rooms; every other room Rivulet asks about is refused.
    // A member removed loses the room within a minute, open streams included.
    const allowed = room.startsWith("private:") && isMember && (action === "ROOM_ACTION_READ" || action === "ROOM_ACTION_WRITE");
    answer(200, { allowed, ttlSeconds: 60 });
  });
}).listen(Number(process.env.PORT ?? 9090), "127.0.0.1", function () {
  console.log(`authorizer listening on http://127.0.0.1:${this.address().port}`);
});
