import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Connection } from "./connection.js";
import { byId, element } from "./dom.js";
import { follow } from "./follow.js";
import { withFreshToken } from "./identity.js";
import type { Panel, PanelHost } from "./panel.js";
import { JobState, ProgressService, type Job, type WatchResponse } from "./rivulet.js";

const stateNames: Readonly<Record<JobState, string>> = {
  [JobState.UNSPECIFIED]: "unknown",
  [JobState.PENDING]: "pending",
  [JobState.RUNNING]: "running",
  [JobState.SUCCEEDED]: "succeeded",
  [JobState.FAILED]: "failed",
  [JobState.CANCELED]: "canceled",
};

const finished = (state: JobState) => state === JobState.SUCCEEDED || state === JobState.FAILED || state === JobState.CANCELED;

/** One job the tab started: its row, and the cursor its Watch resumes from. */
interface ShownJob {
  readonly id: string;
  readonly item: HTMLLIElement;
  cursor: string;
  done: boolean;
  /** Ends this job's Watch (on a new transport, a new one replaces it). */
  stream: AbortController;
  /** Whether its Watch is open (or being retried); else it waits for a free connection. */
  watching: boolean;
}

/**
 * How many jobs to watch at once on `connection`. Over HTTP/1.1 a browser
 * opens at most six connections to a server, and each SSE or Connect-Web
 * stream holds one: the chat panel's two, the notifications' one and an
 * answering assistant's one leave room for a single job's Watch and one
 * connection for unary calls (a seventh request would wait for a free
 * connection, and Send with it). The WebSocket carries every stream on one
 * socket, and HTTP/2 (https pages) multiplexes them: no limit there.
 */
const watchLimit = (connection: Connection) => (connection.kind === "websocket" || location.protocol === "https:" ? Infinity : 1);

/**
 * The jobs panel in #jobs: starts demo jobs (ProgressService.Start, kind
 * "demo": the server runs `steps` steps of `step_ms` each, then succeeds) and
 * shows each with a bar, its stage and its state, newest first. Each job has
 * its own Watch; on a new transport each unfinished one resumes from its
 * cursor, so no snapshot is shown twice or skipped for the switch (Watch is
 * conflated: a slow reader may skip snapshots, but never the last). Over
 * HTTP/1.1 SSE or Connect-Web, one job is watched at a time (`watchLimit`),
 * the others wait in order, marked as such, and catch up from their cursor.
 */
export function createJobsPanel(host: PanelHost): Panel {
  const list = byId<HTMLOListElement>("job-list");
  const form = byId<HTMLFormElement>("job-form");
  const fields = byId<HTMLFieldSetElement>("job-fields");
  const steps = byId<HTMLInputElement>("job-steps");
  const stepMs = byId<HTMLInputElement>("job-step-ms");
  const jobs = new Map<string, ShownJob>();
  let connection: Connection | undefined;
  let left = false;

  list.replaceChildren();

  const fail = (what: string) => (error: unknown) => host.onError(`${what}: ${ConnectError.from(error).message}`);

  /** Opens the Watch of each unfinished job, oldest first, as far as the connection allows. */
  const schedule = () => {
    const current = connection;
    if (!current) return;
    let open = [...jobs.values()].filter((job) => job.watching).length;
    for (const job of jobs.values()) {
      if (job.done || job.watching) continue;
      if (open < watchLimit(current)) {
        open++;
        job.item.dataset.queued = "false";
        watch(job, current);
      } else {
        job.item.dataset.queued = "true";
      }
    }
  };

  const watch = (job: ShownJob, current: Connection) => {
    job.stream.abort();
    job.watching = true;
    const stream = (job.stream = new AbortController());
    const progress = createClient(ProgressService, current.transport);
    void follow<WatchResponse>({
      signal: stream.signal,
      onState: host.onState,
      forgetToken: () => host.identity.forget(),
      open: (s) => untilFinished(progress.watch({ jobId: job.id, cursor: job.cursor }, { signal: s }), stream),
      onResponse: (response) => {
        // A response still in flight on a replaced stream: the new one resumes from the cursor, which it did not move.
        if (stream.signal.aborted || !response.job) return;
        job.cursor = response.cursor;
        show(job, response.job, true);
        if (finished(response.job.state)) {
          job.done = true;
          job.watching = false;
          stream.abort();
          schedule();
        }
      },
      onFatal: fail(`job ${job.id}`),
    });
  };

  const onSubmit = (event: SubmitEvent) => {
    event.preventDefault();
    const params = { steps: steps.value, step_ms: stepMs.value };
    const current = connection;
    if (!current) return fail("start job")(new ConnectError("not connected", Code.Unavailable));
    const start = () => createClient(ProgressService, current.transport).start({ kind: "demo", params });
    withFreshToken(host.identity, start).then(({ job }) => {
      if (!job || left) return;
      const shown: ShownJob = { id: job.id, item: document.createElement("li"), cursor: "", done: false, stream: new AbortController(), watching: false };
      jobs.set(job.id, shown);
      show(shown, job, false);
      list.prepend(shown.item);
      // The transport may have changed while Start was on its way: watch on the current one.
      schedule();
    }, fail("start job"));
  };
  form.addEventListener("submit", onSubmit);
  fields.disabled = false;

  return {
    attach(next) {
      connection = next;
      for (const job of jobs.values()) {
        job.stream.abort();
        job.watching = false;
      }
      schedule();
    },
    leave() {
      left = true;
      connection = undefined;
      for (const job of jobs.values()) job.stream.abort();
      form.removeEventListener("submit", onSubmit);
      fields.disabled = true;
    },
  };
}

/**
 * Shows `snapshot` in the job's row: its bar, percent, stage, state and
 * message. `data-sequences` lists the sequence of every snapshot Watch
 * delivered, in order (Start's is not one): what a test, or a curious reader
 * of the page, checks for a snapshot repeated or out of order.
 */
function show(job: ShownJob, snapshot: Job, watched: boolean) {
  const percent = Math.round(snapshot.fraction * 100);
  const state = stateNames[snapshot.state];
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = snapshot.fraction;
  bar.textContent = `${percent}%`;
  bar.setAttribute("aria-label", `job ${job.id}`);
  const status = [snapshot.stage, `${percent}%`].filter((part) => part !== "").join(" · ");
  job.item.dataset.id = job.id;
  job.item.dataset.state = state;
  if (watched) job.item.dataset.sequences = `${job.item.dataset.sequences ?? ""} ${snapshot.sequence}`.trim();
  job.item.replaceChildren(
    element("strong", `Job ${job.id.slice(0, 8)}`),
    element("span", state, "job-state"),
    bar,
    element("span", snapshot.message ? `${status}: ${snapshot.message}` : status, "job-status"),
  );
}

/**
 * Watch's responses up to the terminal snapshot. The server ends the stream
 * there too, but `follow` would take any end for a drop and open it again: the
 * job's signal is aborted by then, and this throws so `follow` stops quietly.
 */
async function* untilFinished(responses: AsyncIterable<WatchResponse>, stream: AbortController): AsyncGenerator<WatchResponse> {
  for await (const response of responses) {
    yield response;
    if (stream.signal.aborted) throw new ConnectError("the job has finished", Code.Canceled);
  }
}
