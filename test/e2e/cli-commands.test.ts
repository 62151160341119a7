import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { hashApiKey } from "../../src/auth/api-keys.js";
import { loadDevelopmentSecret } from "../../src/auth/development-secret.js";
import { createHmacTokens } from "../../src/auth/tokens.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { startTestServer, testSecret, type TestServer } from "../helpers/server.js";
import { testTempDir } from "../helpers/temp-dir.js";

/**
 * The `rivulet` command as a user runs it: bin/rivulet.js in a child process
 * (test/global-setup.ts builds dist/, which it runs), against a real server;
 * exact output lines and exit codes.
 */
const root = new URL("../..", import.meta.url).pathname;
const bin = join(root, "bin/rivulet.js");
const running = new Set<ChildProcess>();
afterEach(() => {
  for (const child of running) child.kill("SIGKILL");
  running.clear();
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Starts `rivulet …args` with RIVULET_* variables of the test's own only. */
function start(args: readonly string[], env: Record<string, string> = {}, cwd = root): ChildProcess {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("RIVULET_") || name === "RIVULET_TEST_TMPDIR"));
  const child = spawn(process.execPath, [bin, ...args], { cwd, env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

/** Runs `rivulet …args` to its end. */
async function rivulet(args: readonly string[], env: Record<string, string> = {}, cwd = root): Promise<Run> {
  const child = start(args, env, cwd);
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const [code] = (await once(child, "close")) as [number | null];
  return { code, stdout, stderr };
}

/** A running `rivulet tail`: its stdout lines as they come, and a wait for the n-th. */
function tailing(args: readonly string[], env: Record<string, string>) {
  const child = start(["tail", ...args], env);
  const lines: string[] = [];
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  let waiting: { count: number; resolve: () => void } | undefined;
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    if (waiting && lines.length >= waiting.count) waiting.resolve();
  });
  const closed = once(child, "close") as Promise<[number | null]>;
  return {
    child,
    lines,
    stderr: () => stderr,
    closed,
    /** Resolves once `count` lines were printed; rejects if the process ends first. */
    linesUpTo(count: number): Promise<void> {
      if (lines.length >= count) return Promise.resolve();
      return Promise.race([
        new Promise<void>((resolve) => (waiting = { count, resolve })),
        closed.then(([code]) => Promise.reject(new Error(`tail exited with ${code} after ${lines.length} lines: ${stderr}`))),
      ]);
    },
  };
}

/** The text of each chat message a `tail` of ChatService/Subscribe printed. */
function texts(lines: readonly string[]): string[] {
  return lines.map((line) => (JSON.parse(line) as { message?: { text?: string } }).message?.text ?? "");
}

describe("rivulet --help and usage errors", () => {
  it("prints the commands with --help, and exits 2 with the list for no command or an unknown one", async () => {
    const help = await rivulet(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout.split("\n")[0]).toBe("Usage: rivulet <command> [options]   (rivulet <command> --help for each)");
    const none = await rivulet([]);
    expect(none).toMatchObject({ code: 2, stdout: "" });
    expect(none.stderr).toBe(help.stdout);
    expect(await rivulet(["publish"])).toEqual({
      code: 2,
      stdout: "",
      stderr: 'rivulet: unknown command "publish"; the commands are serve, token, call, tail and apikey (rivulet --help)\n',
    });
  });

  it.each([
    ["serve", "Usage: rivulet [options]"],
    ["token", "Usage: rivulet token --user USER [--roles a,b] [--rooms JSON] [--ttl 1h]"],
    ["call", "Usage: rivulet call <Service/Method> [JSON] [--url URL] [--token TOKEN]"],
    ["tail", "Usage: rivulet tail <Service/Method> [JSON] [--transport ws|sse|connect|grpc|grpc-web] [--url URL] [--token TOKEN]"],
    ["apikey", "Usage: rivulet apikey new NAME"],
  ])("rivulet %s --help says how to use it and exits 0", async (command, firstLine) => {
    const run = await rivulet([command, "--help"]);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe("");
    expect(run.stdout.split("\n")[0]).toBe(firstLine);
  });

  it("an unknown flag exits 2 and points at the command's --help", async () => {
    expect(await rivulet(["call", "ChatService/Send", "--verbose"])).toEqual({
      code: 2,
      stdout: "",
      stderr:
        "rivulet: Unknown option '--verbose'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- \"--verbose\"; see rivulet call --help\n",
    });
  });
});

describe("rivulet token", () => {
  it("mints with --auth-secret's secret (here RIVULET_AUTH_SECRET): user, roles, rooms and ttl", async () => {
    const before = Date.now();
    const run = await rivulet(["token", "--user", "alice", "--roles", "publisher,worker", "--rooms", '{"team-42:*":["read","write"]}', "--ttl", "2m"], {
      RIVULET_AUTH_SECRET: testSecret,
    });
    expect(run).toMatchObject({ code: 0, stderr: "" });
    expect(run.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const identity = await createHmacTokens(testSecret).verify(run.stdout.trim());
    expect(identity.userId).toBe("alice");
    expect([...identity.roles]).toEqual(["publisher", "worker"]);
    expect(identity.rooms?.grants("team-42:general", "write")).toBe(true);
    expect(identity.rooms?.grants("team-43:general", "read")).toBe(false);
    expect(identity.expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 120_000);
    expect(identity.expiresAt).toBeLessThanOrEqual(Date.now() + 120_000);
  });

  it("without a secret, signs with development mode's .rivulet/dev-secret of the working directory (made when missing)", async () => {
    const cwd = testTempDir("rivulet-cli-token-");
    const run = await rivulet(["token", "--user", "bob"], {}, cwd);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    const secret = await loadDevelopmentSecret(join(cwd, ".rivulet/dev-secret"));
    expect((await createHmacTokens(secret).verify(run.stdout.trim())).userId).toBe("bob");
  });

  it.each([
    [["token"], "rivulet: --user is required, such as rivulet token --user alice\n"],
    [["token", "--user", "a", "--ttl", "soon"], 'rivulet: --ttl must be a duration such as 90s, 30m, 1h or 7d, not "soon"\n'],
    [
      ["token", "--user", "a", "--rooms", '{"lobby":["admin"]}'],
      `rivulet: --rooms must map room patterns (a name, or a prefix ending in "*") to lists of "read" and "write"; "lobby" lists "admin" (write it as '{"team-42:*":["read","write"]}')\n`,
    ],
  ])("%j is a usage error (exit 2)", async (args, stderr) => {
    expect(await rivulet(args, { RIVULET_AUTH_SECRET: testSecret })).toEqual({ code: 2, stdout: "", stderr });
  });
});

describe("rivulet apikey", () => {
  it("apikey new NAME prints a key and the --api-keys-file line holding its SHA-256", async () => {
    const run = await rivulet(["apikey", "new", "billing-backend"]);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    const lines = run.stdout.split("\n");
    expect(lines[0]).toBe('API key "billing-backend" (give it to your backend, as Authorization: Bearer <key>; it is shown only now):');
    const key = lines[2]!.trim();
    expect(key).toMatch(/^rvk_[\w-]{43}$/);
    expect(lines[4]).toBe("Line for the file passed as --api-keys-file (RIVULET_API_KEYS_FILE); the server reads it at start:");
    expect(lines[6]).toBe(`  ${hashApiKey(key)} billing-backend`);
  });

  it.each([
    [["apikey"], "rivulet: write rivulet apikey new NAME, such as rivulet apikey new billing-backend\n"],
    [["apikey", "new", "no spaces"], "rivulet: NAME must be 1 to 64 letters, digits, '.', '_' or '-', not \"no spaces\"\n"],
  ])("%j is a usage error (exit 2)", async (args, stderr) => {
    expect(await rivulet(args)).toEqual({ code: 2, stdout: "", stderr });
  });
});

describe("rivulet call and tail against a real server", () => {
  let server: TestServer;
  let env: Record<string, string>;

  beforeAll(async () => {
    // Streams end after a second (the shortest --stream-lifetime), so every tail below resumes several times.
    server = await startTestServer({ config: { streamLifetimeMs: 1000 } });
    env = { RIVULET_TOKEN: await server.token("alice") };
  });
  afterAll(() => server?.close());

  const chat = () => clientFor(ChatService, transportFor(server.url, "connect", "1.1"));

  it("takes the server from RIVULET_URL when --url is not given, as the examples do", async () => {
    const run = await rivulet(["call", "ChatService/History", '{"room":"cli-env-url"}'], { ...env, RIVULET_URL: `${server.url}/` });
    expect(run).toEqual({ code: 0, stdout: "{}\n", stderr: "" });
  });

  it("call sends with the full or the short method name and prints the response as one JSON line", async () => {
    const full = await rivulet(["call", "rivulet.chat.v1.ChatService/Send", '{"room":"cli-call","text":"hi"}', "--url", server.url], env);
    expect(full).toMatchObject({ code: 0, stderr: "" });
    const sent = JSON.parse(full.stdout) as { message: { id: string; cursor: string; sentAt: string } };
    expect(full.stdout).toBe(
      `{"message":{"id":"${sent.message.id}","room":"cli-call","author":"alice","text":"hi","sentAt":"${sent.message.sentAt}","cursor":"${sent.message.cursor}"}}\n`,
    );
    const short = await rivulet(["call", "ChatService/History", '{"room":"cli-call"}', "--url", server.url, "--token", env.RIVULET_TOKEN!]);
    expect(short).toEqual({ code: 0, stderr: "", stdout: `{"messages":[${JSON.stringify(sent.message)}]}\n` });
  });

  it("call without a token exits 1 with the Connect code, the server's message and what to do", async () => {
    expect(await rivulet(["call", "ChatService/Send", '{"room":"cli-call","text":"hi"}', "--url", server.url])).toEqual({
      code: 1,
      stdout: "",
      stderr:
        "rivulet: unauthenticated: missing credentials: send Authorization: Bearer <token>; pass --token or set RIVULET_TOKEN (`rivulet token --user NAME` mints one)\n",
    });
  });

  it("call to a server that is not there exits 1 and says to check --url", async () => {
    const run = await rivulet(["call", "ChatService/Send", '{"room":"r","text":"hi"}', "--url", "http://127.0.0.1:1"], env);
    expect(run).toEqual({
      code: 1,
      stdout: "",
      stderr: "rivulet: unavailable: connect ECONNREFUSED 127.0.0.1:1; is the server running at http://127.0.0.1:1? pass --url\n",
    });
  });

  it.each([
    [
      ["call", "ChatService/Shout", "{}"],
      'rivulet: rivulet.chat.v1.ChatService has no method "Shout"; it has Send, Subscribe, History, Complete, CancelCompletion, Signal, WatchPresence\n',
    ],
    [
      ["call", "MailService/Send", "{}"],
      'rivulet: no service "MailService"; the services are rivulet.chat.v1.ChatService, rivulet.notify.v1.NotificationService, rivulet.progress.v1.ProgressService, rivulet.admin.v1.AdminService\n',
    ],
    [["call", "Send", "{}"], 'rivulet: "Send" is not a method: write Service/Method, such as rivulet.chat.v1.ChatService/Send or ChatService/Send\n'],
    [
      ["call", "ChatService/Send", "{room:lobby}"],
      `rivulet: the request is not JSON (Expected property name or '}' in JSON at position 1 (line 1 column 2)); quote it, such as '{"room":"lobby"}'\n`,
    ],
    [
      ["call", "ChatService/Send", '{"rooom":"lobby"}'],
      'rivulet: the request is not a rivulet.chat.v1.SendRequest: cannot decode message rivulet.chat.v1.SendRequest from JSON: key "rooom" is unknown\n',
    ],
    [["call", "ChatService/Subscribe", "{}"], "rivulet: rivulet.chat.v1.ChatService/Subscribe is a server streaming method: use rivulet tail\n"],
    [["tail", "ChatService/Send", "{}"], "rivulet: rivulet.chat.v1.ChatService/Send is unary: use rivulet call\n"],
    [
      ["tail", "ChatService/Subscribe", "{}", "--transport", "carrier-pigeon"],
      'rivulet: --transport must be one of ws, sse, connect, grpc, grpc-web, not "carrier-pigeon"\n',
    ],
    [
      ["call", "ChatService/Send", "{}", "--url", "localhost:8080"],
      'rivulet: --url must be the server\'s http:// or https:// address, such as http://localhost:8080, not "localhost:8080"\n',
    ],
  ])("%j is a usage error (exit 2) that says what to write", async (args, stderr) => {
    expect(await rivulet(args, env)).toEqual({ code: 2, stdout: "", stderr });
  });

  it.each(["ws", "sse", "connect", "grpc", "grpc-web"])(
    "tail --transport %s prints every message once, in order, across the server ending the stream, and exits 0 on SIGINT",
    async (transport) => {
      const room = `cli-tail-${transport}`;
      const token = bearer(env.RIVULET_TOKEN!);
      await chat().send({ room, text: "0" }, token);
      const tail = tailing(["ChatService/Subscribe", JSON.stringify({ room, history: 10 }), "--transport", transport, "--url", server.url], env);
      // The history's message arriving says the stream is open; then one message at a time, each sent when the last was printed,
      // until the stream was resumed twice (the WebSocket's resumes are silent: for over two stream lifetimes).
      await tail.linesUpTo(1);
      const startedAt = Date.now();
      const resumed = () => tail.stderr().split("\n").filter(Boolean).length >= 2;
      let sent = 1;
      while (sent < 5 || (transport === "ws" ? Date.now() - startedAt < 2500 : !resumed())) {
        await chat().send({ room, text: String(sent) }, token);
        sent++;
        await tail.linesUpTo(sent);
      }
      tail.child.kill("SIGINT");
      const [code] = await tail.closed;
      expect(code).toBe(0);
      expect(texts(tail.lines)).toEqual(Array.from({ length: sent }, (_, i) => String(i)));
      // connect-node's transports and the SSE client say so when they resume; the WebSocket transport resumes on its open socket, silently.
      const notes = tail.stderr().split("\n").filter(Boolean);
      for (const note of notes) expect(note).toMatch(/^rivulet: unavailable: stream lifetime reached: resume from your last cursor; resuming in \d+ ms$/);
      if (transport !== "ws") expect(notes.length).toBeGreaterThanOrEqual(2);
      else expect(notes).toEqual([]);
    },
    30_000,
  );

  it.each(["ws", "sse", "connect", "grpc", "grpc-web"])("tail --transport %s exits 0 when the stream ends by itself (a completion)", async (transport) => {
    const run = await rivulet(
      ["tail", "ChatService/Complete", '{"messages":[{"role":"user","content":"hello"}],"maxTokens":3}', "--transport", transport, "--url", server.url],
      env,
    );
    expect(run.code).toBe(0);
    const responses = run.stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { finishReason?: string; delta?: string });
    expect(responses.at(-1)?.finishReason).toBe("length");
    expect(responses.filter((r) => r.delta !== undefined)).toHaveLength(3);
  });

  it.each(["ws", "sse", "connect", "grpc", "grpc-web"])(
    "tail --transport %s with a token the server refuses exits 1 with the code and message",
    async (transport) => {
      const run = await rivulet(["tail", "ChatService/Subscribe", '{"room":"lobby"}', "--transport", transport, "--url", server.url, "--token", "not-a-token"]);
      expect(run).toEqual({
        code: 1,
        stdout: "",
        stderr: "rivulet: unauthenticated: invalid token; pass --token or set RIVULET_TOKEN (`rivulet token --user NAME` mints one)\n",
      });
    },
  );
});

describe("rivulet serve", () => {
  it("runs the server as npm start does (same flags), answers rivulet call, and stops cleanly on SIGTERM", async () => {
    const child = start(["serve", "--port", "0", "--host", "127.0.0.1", "--auth-secret", testSecret, "--rooms-default", "allow", "--shutdown-grace", "1s"]);
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on("line", (line) => {
        const entry = JSON.parse(line) as { msg?: unknown; port?: unknown };
        if (typeof entry.port === "number" && String(entry.msg).startsWith("listening on")) resolve(entry.port);
      });
      child.once("exit", (code) => reject(new Error(`rivulet serve exited with ${code}`)));
    });
    const token = (await rivulet(["token", "--user", "carol"], { RIVULET_AUTH_SECRET: testSecret })).stdout.trim();
    const sent = await rivulet(["call", "ChatService/Send", '{"room":"served","text":"hello"}', "--url", `http://127.0.0.1:${port}`, "--token", token]);
    expect(sent).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(sent.stdout)).toMatchObject({ message: { room: "served", author: "carol", text: "hello" } });
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    expect((await exited)[0]).toBe(0);
  });

  it("a bad flag exits 2 with the flag and the usage", async () => {
    const run = await rivulet(["serve", "--port", "eighty"]);
    expect(run.code).toBe(2);
    expect(run.stderr.split("\n")[0]).toBe('rivulet: --port (PORT): must be a whole number, got "eighty"');
  });
});
