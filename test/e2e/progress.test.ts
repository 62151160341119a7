import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState, ProgressService, WatchRequestSchema, WatchResponseSchema, type WatchResponse } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { bearer, clientFor, collect, transportFor } from "../helpers/clients.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

describe("ProgressService: jobs, reports and conflated watches", () => {
  let server: TestServer;
  let progress: ReturnType<typeof clientFor<typeof ProgressService>>;
  let owner: ReturnType<typeof bearer>;
  let worker: ReturnType<typeof bearer>;
  beforeAll(async () => {
    server = await startTestServer();
    progress = clientFor(ProgressService, transportFor(server.url, "grpc", "2"));
    owner = bearer(await server.token("owner"));
    worker = bearer(await server.token("w-1", ["worker"]));
  });
  afterAll(() => server.close());

  it("runs the demo job: snapshot first, updates in order, ends after the terminal state", async () => {
    const { job } = await progress.start({ kind: "demo", params: { steps: "4", step_ms: "5" } }, owner);
    expect(job).toMatchObject({ kind: "demo", state: JobState.PENDING, owner: "owner", sequence: 1n });
    const updates = await collect(progress.watch({ jobId: job!.id }, owner));
    const sequences = updates.map((u) => Number(u.job!.sequence));
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b)); // in order, conflation may skip some
    expect(updates.at(-1)!.job).toMatchObject({ state: JobState.SUCCEEDED, fraction: 1, stage: "step 4 of 4", sequence: 5n });
  });

  it("a deliberately slow watcher skips intermediate snapshots but always sees the latest and terminal one", async () => {
    const { job } = await progress.start({ kind: "export" }, owner);
    // A raw gRPC call over HTTP/2 with a 4 KiB stream window that stops reading after
    // the first snapshot: the server cannot write ahead, so it must conflate.
    const session = http2.connect(server.url, { settings: { initialWindowSize: 4096 } });
    const ownerToken = await server.token("owner");
    const stream = session.request({
      ":method": "POST",
      ":path": "/rivulet.progress.v1.ProgressService/Watch",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${ownerToken}`,
    });
    stream.end(grpcFrame(toBinary(WatchRequestSchema, create(WatchRequestSchema, { jobId: job!.id }))));
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
    };
    await new Promise<void>((resolve) => stream.once("data", (chunk: Buffer) => (onData(chunk), resolve())));
    stream.pause();
    const reports = 300;
    const padding = "x".repeat(1000);
    for (let i = 1; i < reports; i++) {
      await progress.report({ jobId: job!.id, fraction: i / reports, stage: "copy", message: `${i} ${padding}` }, worker);
    }
    await progress.report({ jobId: job!.id, state: JobState.SUCCEEDED, fraction: 1, stage: "done", message: "all copied" }, worker);
    stream.on("data", onData);
    stream.resume();
    await new Promise((resolve) => stream.once("end", resolve));
    session.close();
    const seen = grpcMessages(received).map((bytes) => fromBinary(WatchResponseSchema, bytes));
    expect(seen[0]!.job?.state).toBe(JobState.PENDING);
    expect(seen.at(-1)!.job).toMatchObject({ state: JobState.SUCCEEDED, message: "all copied", sequence: BigInt(reports + 1) });
    expect(seen.length).toBeLessThan(reports / 2);
    const sequences = seen.map((s) => Number(s.job!.sequence));
    expect(sequences).toEqual([...new Set(sequences)].sort((a, b) => a - b));
  });

  it("a watcher that reads everything sees the terminal state over a generated client", async () => {
    const { job } = await progress.start({ kind: "export" }, owner);
    const watch = progress.watch({ jobId: job!.id }, owner)[Symbol.asyncIterator]();
    expect(((await watch.next()).value as WatchResponse).job?.state).toBe(JobState.PENDING);
    for (let i = 1; i < 50; i++) await progress.report({ jobId: job!.id, fraction: i / 50 }, worker);
    await progress.report({ jobId: job!.id, state: JobState.CANCELED, message: "stopped" }, worker);
    const seen: WatchResponse[] = [];
    for (let r = await watch.next(); !r.done; r = await watch.next()) seen.push(r.value);
    expect(seen.at(-1)!.job).toMatchObject({ state: JobState.CANCELED, sequence: 51n }); // start + 49 reports + cancel
  });

  it("resuming a watch at its terminal cursor ends at once; a late watcher gets the terminal snapshot", async () => {
    const { job } = await progress.start({ kind: "demo", params: { steps: "1", step_ms: "0" } }, owner);
    const updates = await collect(progress.watch({ jobId: job!.id }, owner));
    const last = updates.at(-1)!;
    expect(last.job?.state).toBe(JobState.SUCCEEDED);
    expect(await collect(progress.watch({ jobId: job!.id, cursor: last.cursor }, owner))).toEqual([]);
    const late = await collect(progress.watch({ jobId: job!.id }, owner));
    expect(late.map((u) => u.job?.state)).toEqual([JobState.SUCCEEDED]);
  });

  it("enforces who may report and watch, and refuses reports on finished jobs", async () => {
    const { job } = await progress.start({ kind: "export" }, owner);
    const stranger = bearer(await server.token("stranger"));
    await expect(progress.report({ jobId: job!.id, fraction: 0.5 }, stranger)).rejects.toMatchObject({ code: 7 });
    await expect(collect(progress.watch({ jobId: job!.id }, stranger))).rejects.toMatchObject({ code: 7 });
    // The owner may report on its own job.
    const { job: running } = await progress.report({ jobId: job!.id, fraction: 0.5, stage: "half" }, owner);
    expect(running).toMatchObject({ state: JobState.RUNNING, fraction: 0.5, stage: "half", sequence: 2n });
    await progress.report({ jobId: job!.id, state: JobState.FAILED, message: "disk full" }, worker);
    await expect(progress.report({ jobId: job!.id, fraction: 1 }, worker)).rejects.toMatchObject({ code: 9 });
    await expect(progress.report({ jobId: "no-such-job", fraction: 1 }, worker)).rejects.toMatchObject({ code: 5 });
    await expect(collect(progress.watch({ jobId: "no-such-job" }, owner))).rejects.toMatchObject({ code: 5 });
  });

  it("validates fields with invalid_argument", async () => {
    const { job } = await progress.start({ kind: "export" }, owner);
    for (const request of [
      { jobId: job!.id, fraction: 1.5 },
      { jobId: job!.id, fraction: -0.1 },
      { jobId: job!.id, state: 42 as JobState },
      { jobId: job!.id, state: JobState.PENDING },
      { jobId: job!.id, stage: "s".repeat(129) },
      { jobId: "" },
    ]) {
      await expect(progress.report(request, worker)).rejects.toMatchObject({ code: 3 });
    }
    await expect(progress.start({ kind: "" }, owner)).rejects.toMatchObject({ code: 3 });
    await expect(progress.start({ kind: "demo", params: { steps: "0" } }, owner)).rejects.toMatchObject({ code: 3 });
  });
});

/** A gRPC length-prefixed message (uncompressed). */
function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** Splits a gRPC response body into its messages. */
function grpcMessages(body: Buffer): Uint8Array[] {
  const messages: Uint8Array[] = [];
  for (let at = 0; at + 5 <= body.length;) {
    const length = body.readUInt32BE(at + 1);
    messages.push(body.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return messages;
}
