// A backend that posts to a chat room as a bot and notifies users, with an API key (README.md, "Server API").
// Run with a key the server's --api-keys-file lists: RIVULET_API_KEY=rvk_… npx tsx examples/backend-publish.ts
// In your own project: npm install @rivulet/client @connectrpc/connect @connectrpc/connect-node @bufbuild/protobuf
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node"; // gRPC over HTTP/2 (h2c for http://), for servers
import { AdminService } from "@rivulet/client";

const baseUrl = process.env.RIVULET_URL ?? "http://localhost:8080";
// The key is a secret of your backend: read it from the environment, never commit it, never send it to a browser.
const apiKey = process.env.RIVULET_API_KEY;
if (!apiKey) throw new Error("set RIVULET_API_KEY to a key made with `npx rivulet apikey new NAME`");

// A key goes where a token would, on every call: Authorization: Bearer rvk_…
const withApiKey: Interceptor = (next) => (request) => {
  request.header.set("Authorization", `Bearer ${apiKey}`);
  return next(request);
};
const admin = createClient(AdminService, createGrpcTransport({ baseUrl, interceptors: [withApiKey] }));

// Post as any author, with no room access check; subscribers of the room get it like any message.
// With an idempotency key, a retry after a timeout returns the message already posted instead of posting it twice.
const { message } = await admin.publishMessage({ room: "lobby", author: "deploy-bot", text: "release 1.4 is live", idempotencyKey: "release-1.4" });
console.log(`posted to ${message?.room} as ${message?.author}: ${message?.text}`);

// One notification per user, stored and delivered on their NotificationService.Subscribe streams.
const { notifications } = await admin.notify({
  userIds: ["alice", "bob"],
  kind: "release",
  title: "Release 1.4",
  body: "Rivulet 1.4 is live: see what changed.",
  data: { version: "1.4" },
});
for (const notification of notifications) console.log(`notified ${notification.userId}: ${notification.title}`);
