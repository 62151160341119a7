// A cached token, renewed when the server refuses it, while `npm start` serves: npx tsx examples/client-token-refusal.ts
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { ChatService, createWebSocketTransport, isRetryable, retryableCodes, type TokenRequest } from "@rivulet/client";

const baseUrl = process.env.RIVULET_URL ?? "http://localhost:8080";

// A token function as applications write them: it returns its cached token until told the server refused it.
let cached = "a-token-that-expired";
async function token({ refused }: TokenRequest): Promise<string> {
  console.log(refused === undefined ? "token asked" : `token asked, ${refused} was refused`);
  if (refused === cached) cached = await (await fetch(`${baseUrl}/dev/token?user=alice`)).text();
  return cached;
}

const transport = createWebSocketTransport({ url: `${baseUrl.replace(/^http/, "ws")}/ws`, token });
const chat = createClient(ChatService, transport);
const { message } = await chat.send({ room: "lobby", text: "sent with a renewed token" });
console.log(`sent: ${message?.text}`);

// Which failures are worth a retry after a backoff, and which need a change first.
console.log(`retryable: ${retryableCodes.map((code) => Code[code]).join(", ")}`);
try {
  await chat.send({ room: "dm#bob,carol", text: "not for alice" });
} catch (error) {
  const failure = ConnectError.from(error);
  console.log(`${Code[failure.code]}: retryable ${isRetryable(failure)}`);
}
transport.close();
