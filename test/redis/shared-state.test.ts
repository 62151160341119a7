import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatService, type CompleteResponse } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { NotificationService } from "../../gen/rivulet/notify/v1/notify_pb.js";
import { JobState, ProgressService, type Job } from "../../gen/rivulet/progress/v1/progress_pb.js";
import { bearer, clientFor, collect, take, transportFor } from "../helpers/clients.js";
import { sharedBrokers, startInstances, type Instances } from "./instances.js";

const prompt = [{ role: "user", content: "Explain how instances share Redis" }];
const text = (events: CompleteResponse[]) => events.map((event) => event.delta).join("");

/** What one instance knows, every instance knows: the state lives in Redis, not in a process. */
for (const broker of sharedBrokers()) {
  describe.runIf(broker.available)(`state shared by every instance (${broker.name})`, () => {
    let instances: Instances;
    let on: {
      chat: ReturnType<typeof clientFor<typeof ChatService>>;
      notify: ReturnType<typeof clientFor<typeof NotificationService>>;
      progress: ReturnType<typeof clientFor<typeof ProgressService>>;
    }[];
    let alice: ReturnType<typeof bearer>;
    beforeAll(async () => {
      instances = await startInstances(3, { redisUrl: broker.url });
      on = instances.list.map((instance) => {
        const transport = transportFor(instance.url, "connect", "2");
        return { chat: clientFor(ChatService, transport), notify: clientFor(NotificationService, transport), progress: clientFor(ProgressService, transport) };
      });
      alice = bearer(await instances.token("alice"));
    }, 60_000);
    afterAll(() => instances?.close());

    it("deduplicates a send retried on another instance: one message", async () => {
      const room = "retried";
      const first = (await on[0]!.chat.send({ room, text: "once", idempotencyKey: "k-1" }, alice)).message!;
      const retried = (await on[1]!.chat.send({ room, text: "once", idempotencyKey: "k-1" }, alice)).message!;
      const concurrent = await Promise.all(on.map(({ chat }) => chat.send({ room, text: "twice?", idempotencyKey: "k-2" }, alice)));
      expect(retried).toEqual(first);
      expect(new Set(concurrent.map((response) => response.message!.id)).size).toBe(1);
      const history = await take(on[2]!.chat.subscribe({ room, history: 10 }, alice), 2);
      expect(history.map((response) => (response.event.case === "message" ? response.event.value.text : "?"))).toEqual(["once", "twice?"]);
      expect(history[0]!.cursor).toBe(first.cursor);
    });

    it("deduplicates a notification published again through another instance", async () => {
      const publisher = bearer(await instances.token("billing", ["publisher"]));
      const request = { userId: "bob", kind: "invoice", title: "Invoice ready", idempotencyKey: "invoice-7" };
      const first = (await on[0]!.notify.publish(request, publisher)).notification!;
      const again = (await on[2]!.notify.publish(request, publisher)).notification!;
      expect(again.id).toBe(first.id);
      const bob = bearer(await instances.token("bob"));
      const [only] = await take(on[1]!.notify.subscribe({ history: 10 }, bob), 1);
      expect(only?.event.case === "notification" && only.event.value.id).toBe(first.id);
    });

    it("shares jobs: started on A, reported on C, watched on B to the end", async () => {
      const worker = bearer(await instances.token("worker-1", ["worker"]));
      const { job } = await on[0]!.progress.start({ kind: "render" }, alice);
      const watch = on[1]!.progress.watch({ jobId: job!.id }, alice)[Symbol.asyncIterator]();
      expect((await watch.next()).value?.job).toMatchObject({ id: job!.id, state: JobState.PENDING, sequence: 1n });
      await on[2]!.progress.report({ jobId: job!.id, fraction: 0.5, stage: "half" }, worker);
      expect((await watch.next()).value?.job).toMatchObject({ state: JobState.RUNNING, fraction: 0.5, stage: "half", sequence: 2n });
      await on[0]!.progress.report({ jobId: job!.id, state: JobState.SUCCEEDED, fraction: 1 }, worker);
      expect((await watch.next()).value?.job).toMatchObject({ state: JobState.SUCCEEDED, sequence: 3n });
      expect((await watch.next()).done).toBe(true);
      await expect(on[1]!.progress.report({ jobId: job!.id, fraction: 1 }, worker)).rejects.toMatchObject({ code: 9 }); // failed_precondition
    });

    it("keeps a finished job finished when reports race on several instances", async () => {
      const worker = bearer(await instances.token("worker-2", ["worker"]));
      for (let round = 0; round < 5; round++) {
        const { job } = await on[0]!.progress.start({ kind: "race" }, alice);
        const reports = Array.from({ length: 30 }, (_, i) =>
          on[i % 3]!.progress.report(
            { jobId: job!.id, state: i === 15 ? JobState.SUCCEEDED : JobState.RUNNING, fraction: i / 30, message: `report ${i}` },
            worker,
          ).then(
            (response) => response.job!,
            (error: unknown) => error as Error,
          ),
        );
        const results = await Promise.all(reports);
        const accepted = results.filter((result): result is Job => !(result instanceof Error));
        const finished = accepted.find((result) => result.state === JobState.SUCCEEDED);
        // Every accepted report came before the terminal one; every later one was refused.
        expect(finished, `round ${round}`).toBeDefined();
        expect(
          accepted.filter((result) => result.sequence > finished!.sequence),
          `round ${round}`,
        ).toEqual([]);
        expect(results.filter((result) => result instanceof Error).every((error) => (error as { code?: number }).code === 9)).toBe(true);
        expect(new Set(accepted.map((result) => result.sequence)).size).toBe(accepted.length);
        // A late watcher sees the terminal snapshot and the end.
        const watched = await collect(on[1]!.progress.watch({ jobId: job!.id }, alice));
        expect(watched.map((response) => response.job?.state)).toEqual([JobState.SUCCEEDED]);
      }
    });

    it("resumes a completion generating on A from B, and cancels one from C", async () => {
      const reference = await collect(on[0]!.chat.complete({ messages: prompt, maxTokens: 120 }, alice));
      const head = await take(on[0]!.chat.complete({ messages: prompt, maxTokens: 120, completionId: "shared-1" }, alice), 5);
      const rest = await collect(on[1]!.chat.complete({ completionId: "shared-1", cursor: head.at(-1)!.cursor }, alice));
      expect(text([...head, ...rest])).toBe(text(reference));
      expect(rest.at(-1)?.finishReason).toBe("stop");
      // Starting the same id on another instance replays it instead of generating again.
      expect(text(await collect(on[2]!.chat.complete({ messages: prompt, completionId: "shared-1" }, alice)))).toBe(text(reference));

      const long = on[0]!.chat.complete({ messages: prompt, maxTokens: 4096, completionId: "shared-2" }, alice)[Symbol.asyncIterator]();
      await long.next();
      await long.next(); // generating now
      expect((await on[2]!.chat.cancelCompletion({ completionId: "shared-2" }, alice)).canceled).toBe(true);
      let last: CompleteResponse | undefined;
      for (let result = await long.next(); !result.done; result = await long.next()) last = result.value;
      expect(last?.finishReason).toBe("canceled");
    });
  });
}
