import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { NotificationService } from "../../gen/rivulet/notify/v1/notify_pb.js";
import { JobState, ProgressService } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { allTransports, bearer, clientFor, collect, take, type NamedTransport } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { createTestCertificate } from "../helpers/tls.js";

/**
 * Every method, through generated clients, over Connect, gRPC and gRPC-Web on
 * HTTP/1.1 and HTTP/2, cleartext (h2c) and TLS: the same results everywhere.
 */
interface Outcome {
  chat: string[];
  completion: string;
  finishReason: string;
  canceledAfterFinish: boolean;
  notification: string;
  jobStates: JobState[];
  reported: string;
}

async function exercise(server: TestServer, { name, transport }: NamedTransport): Promise<Outcome> {
  const tag = name.replace(/[^a-z0-9]+/gi, "-");
  const alice = bearer(await server.token("alice"));
  const bob = bearer(await server.token(`bob-${tag}`));
  const publisher = bearer(await server.token("pub", ["publisher"]));
  const worker = bearer(await server.token("worker-1", ["worker"]));
  const chat = clientFor(ChatService, transport);
  const notify = clientFor(NotificationService, transport);
  const progress = clientFor(ProgressService, transport);

  // Chat: the first message proves the subscription is live, then two more arrive live.
  const room = `room-${tag}`;
  await chat.send({ room, text: "one" }, alice);
  const subscription = chat.subscribe({ room, history: 1 }, alice)[Symbol.asyncIterator]();
  const received: string[] = [];
  const nextText = async () => {
    const { value } = await subscription.next();
    if (value?.event.case === "message") received.push(`${value.event.value.author}:${value.event.value.text}`);
  };
  await nextText(); // "one", from history: the subscription is live now
  await chat.send({ room, text: "two" }, alice);
  await chat.send({ room, text: "three" }, alice);
  await nextText();
  await nextText();
  await subscription.return?.();

  const completion = await collect(chat.complete({ messages: [{ role: "user", content: "Tell me about streams" }], maxTokens: 64 }, alice));
  const id = completion[0]?.completionId ?? "";
  const canceled = await chat.cancelCompletion({ completionId: id }, alice);

  await notify.publish({ userId: `bob-${tag}`, kind: "mention", title: "hi", body: "from pub" }, publisher);
  const [note] = await take(notify.subscribe({ history: 5 }, bob), 1);

  const demo = await progress.start({ kind: "demo", params: { steps: "3", step_ms: "0" } }, alice);
  const watched = await collect(progress.watch({ jobId: demo.job?.id ?? "" }, alice));

  const job = await progress.start({ kind: "export" }, alice);
  const report = await progress.report({ jobId: job.job?.id ?? "", state: JobState.SUCCEEDED, fraction: 1, stage: "done", message: "ok" }, worker);

  return {
    chat: received,
    completion: completion.map((c) => c.delta).join(""),
    finishReason: completion.at(-1)?.finishReason ?? "",
    canceledAfterFinish: canceled.canceled,
    notification: note?.event.case === "notification" ? `${note.event.value.kind}:${note.event.value.title}` : "none",
    jobStates: [watched.at(-1)?.job?.state ?? JobState.UNSPECIFIED],
    reported: `${report.job?.state}:${report.job?.stage}:${report.job?.sequence}`,
  };
}

const expected: Outcome = {
  chat: ["alice:one", "alice:two", "alice:three"],
  completion: expect.stringMatching(/\S/) as unknown as string,
  finishReason: "stop",
  canceledAfterFinish: false,
  notification: "mention:hi",
  jobStates: [JobState.SUCCEEDED],
  reported: `${JobState.SUCCEEDED}:done:2`,
};

describe.each([
  { scheme: "cleartext (HTTP/1.1 and h2c)", tls: false },
  { scheme: "TLS (ALPN h2 and http/1.1)", tls: true },
])("every method over every protocol, $scheme", ({ tls }) => {
  let server: TestServer;
  beforeAll(async () => {
    const certificate = tls ? createTestCertificate() : undefined;
    server = await startTestServer({ config: { tlsCert: certificate?.certFile, tlsKey: certificate?.keyFile } });
  });
  afterAll(() => server.close());

  it("gives the same results on all six transports", async () => {
    const outcomes = new Map<string, Outcome>();
    for (const named of allTransports(server.url)) outcomes.set(named.name, await exercise(server, named));
    const completions = new Set([...outcomes.values()].map((o) => o.completion));
    expect(completions.size).toBe(1); // the embedded model is deterministic: same prompt, same reply
    for (const [name, outcome] of outcomes) {
      expect({ name, ...outcome }).toEqual({ name, ...expected });
    }
  });
});
