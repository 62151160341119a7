import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { rm, stat, writeFile } from "node:fs/promises";
import { connect, createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { ChatService } from "../../gen/rivulet/chat/v1/chat_pb.js";
import { createHmacTokens } from "../../src/auth/tokens.js";
import { bearer, clientFor, transportFor } from "../helpers/clients.js";
import { testSecret } from "../helpers/server.js";
import { testTempDir } from "../helpers/temp-dir.js";

const root = new URL("../..", import.meta.url).pathname;
let child: ChildProcess | undefined;
const others: ChildProcess[] = [];
afterEach(() => {
  for (const running of [child, ...others.splice(0)]) running?.kill("SIGKILL");
  child = undefined;
});

/** Starts the compiled server as `npm start` does (test/global-setup.ts builds it); resolves with the port it logs and every log line. */
async function start(args: string[], env: Record<string, string> = {}, cwd = root) {
  if (child) others.push(child);
  child = spawn(process.execPath, [join(root, "dist/src/main.js"), ...args], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const lines: Record<string, unknown>[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child!.stdout! }).on("line", (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (typeof entry.port === "number" && String(entry.msg).startsWith("listening on")) resolve(entry.port);
    });
    child!.once("exit", (code) => reject(new Error(`exited with ${code}`)));
  });
  return { port, lines, process: child };
}

describe("the command line", () => {
  it("listens on a free port with --port 0, logs it, and shuts down gracefully on SIGTERM", async () => {
    const { port, lines, process: server } = await start(["--port", "0", "--host", "127.0.0.1", "--shutdown-grace", "2s"], { RIVULET_AUTH_SECRET: testSecret });
    expect(port).toBeGreaterThan(0);
    expect(lines.some((l) => String(l.msg).includes("DEVELOPMENT MODE"))).toBe(false);
    // With a secret, rooms are closed unless granted (--rooms-default deny): the token's rooms claim grants this one.
    const token = bearer(await createHmacTokens(testSecret).mint({ userId: "alice", rooms: { cli: ["read", "write"] } }));
    const chat = clientFor(ChatService, transportFor(`http://127.0.0.1:${port}`, "connect", "2"));
    await chat.send({ room: "cli", text: "hello" }, token);
    const stream = chat.subscribe({ room: "cli", history: 1 }, token)[Symbol.asyncIterator]();
    await stream.next(); // live now
    const exited = once(server, "exit");
    server.kill("SIGTERM");
    // The open stream is told to reconnect elsewhere, then the process exits cleanly.
    await expect(stream.next()).rejects.toMatchObject({ code: 14, rawMessage: "server is shutting down; reconnect" });
    const [code] = await exited;
    expect(code).toBe(0);
  });

  it("says loudly that it runs in development mode without a secret", async () => {
    const { lines, port } = await start(["--port", "0", "--host", "127.0.0.1"]);
    expect(lines.find((l) => String(l.msg).startsWith("DEVELOPMENT MODE"))).toMatchObject({ level: 40 });
    expect((await fetch(`http://127.0.0.1:${port}/dev/token?user=alice`)).status).toBe(200);
  });

  it("keeps the development secret in .rivulet/dev-secret: a second instance and a restart accept the first one's tokens", async () => {
    const cwd = testTempDir("rivulet-dev-");
    try {
      const args = ["--port", "0", "--host", "127.0.0.1", "--shutdown-grace", "1s"];
      const first = await start(args, {}, cwd);
      const token = bearer(await (await fetch(`http://127.0.0.1:${first.port}/dev/token?user=alice`)).text());
      const second = await start(args, {}, cwd);
      const onSecond = clientFor(ChatService, transportFor(`http://127.0.0.1:${second.port}`, "connect", "1.1"));
      expect((await onSecond.send({ room: "dev", text: "minted by the first instance" }, token)).message?.author).toBe("alice");
      expect((await stat(join(cwd, ".rivulet/dev-secret"))).mode & 0o777).toBe(0o600);

      const exited = once(first.process, "exit");
      first.process.kill("SIGTERM");
      await exited;
      const restarted = await start(args, {}, cwd);
      const onRestarted = clientFor(ChatService, transportFor(`http://127.0.0.1:${restarted.port}`, "connect", "1.1"));
      expect((await onRestarted.send({ room: "dev", text: "after a restart" }, token)).message?.author).toBe("alice");
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  }, 60_000);

  it("serves in development mode with a secret of its own when .rivulet/dev-secret cannot be kept, and says so", async () => {
    // A `.rivulet` that is a file stands for any directory the secret cannot be written to (read-only, not ours): root ignores modes.
    const cwd = testTempDir("rivulet-dev-");
    try {
      await writeFile(join(cwd, ".rivulet"), "not a directory\n");
      const { lines, port } = await start(["--port", "0", "--host", "127.0.0.1"], {}, cwd);
      expect(lines.find((l) => String(l.msg).startsWith("DEVELOPMENT MODE"))).toMatchObject({
        level: 40,
        msg: expect.stringContaining("a random secret of this process only"),
      });
      const token = bearer(await (await fetch(`http://127.0.0.1:${port}/dev/token?user=alice`)).text());
      const chat = clientFor(ChatService, transportFor(`http://127.0.0.1:${port}`, "connect", "1.1"));
      expect((await chat.send({ room: "dev", text: "no secret file" }, token)).message?.author).toBe("alice");
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });

  it("refuses a bad value with a clear message and exit code 2", async () => {
    child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--port", "99999"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = await once(child, "exit");
    expect(code).toBe(2);
    expect(stderr).toContain("rivulet: --port (PORT): must be at most 65535");
  });

  it("says in one line that the port is in use, with no stack trace, and exits with 1", async () => {
    const taken = createServer();
    taken.listen(0, "127.0.0.1");
    await once(taken, "listening");
    try {
      const { port } = taken.address() as AddressInfo;
      child = spawn(process.execPath, [join(root, "dist/src/main.js"), "--port", String(port), "--host", "127.0.0.1"], {
        cwd: root,
        env: { ...process.env, RIVULET_AUTH_SECRET: testSecret },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const [code] = await once(child, "exit");
      expect({ code, stderr }).toEqual({ code: 1, stderr: `rivulet: port ${port} is in use; pass --port\n` });
    } finally {
      taken.close();
    }
  });

  describe("shuts down within --shutdown-grace whatever its stdout does", () => {
    /** Resolves with the exit code, or "still running" if the process outlives the grace by `marginMs` (before the fix it never exited). */
    const exitWithin = (server: ChildProcess, graceMs: number, marginMs = 5000) =>
      new Promise<number | string>((resolve) => {
        const timer = setTimeout(() => resolve("still running"), graceMs + marginMs);
        server.once("exit", (code) => {
          clearTimeout(timer);
          resolve(code ?? "killed");
        });
      });

    it("exits within one grace period when a WebSocket peer never answers the close frame", async () => {
      const { port, process: server } = await start(["--port", "0", "--host", "127.0.0.1", "--shutdown-grace", "3s"], { RIVULET_AUTH_SECRET: testSecret });
      const token = await createHmacTokens(testSecret).mint({ userId: "alice" });
      // A peer that completes the handshake, then reads nothing and answers nothing.
      const peer = connect(port, "127.0.0.1");
      peer.on("error", () => undefined);
      peer.write(
        `GET /ws?access_token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: rivulet.v1\r\n\r\n`,
      );
      const [answer] = (await once(peer, "data")) as [Buffer];
      expect(answer.toString("latin1")).toMatch(/^HTTP\/1\.1 101 /);
      peer.pause();
      try {
        // Before, the WebSocket goodbye waited one grace period and the connections' close another.
        const exited = exitWithin(server, 3000, 2500);
        server.kill("SIGTERM");
        expect(await exited).toBe(0);
      } finally {
        peer.destroy();
      }
    });

    it("exits when the reader of its log has gone away (| head -c N)", async () => {
      const { process: server } = await start(["--port", "0", "--host", "127.0.0.1", "--shutdown-grace", "1s"], { RIVULET_AUTH_SECRET: testSecret });
      // The reader takes the first lines and closes: every later write gets EPIPE.
      server.stdout!.destroy();
      const exited = exitWithin(server, 1000);
      server.kill("SIGTERM");
      expect(await exited).toBe(0);
    });

    it("exits when the reader of its log stops reading (the pipe is full)", async () => {
      const { port, process: server } = await start(["--port", "0", "--host", "127.0.0.1", "--shutdown-grace", "1s", "--log-level", "debug"], {
        RIVULET_AUTH_SECRET: testSecret,
      });
      server.stdout!.pause();
      const token = await createHmacTokens(testSecret).mint({ userId: "alice", rooms: { stdout: ["read"] } });
      // Each stream logs its URL at debug: 60 lines of 15 KB, more than any pipe or socket buffer holds.
      const path = `/sse/rivulet.chat.v1.ChatService/Subscribe?message=${encodeURIComponent(JSON.stringify({ room: "stdout" }))}&padding=${"x".repeat(15_000)}`;
      const opened = new AbortController();
      const responses = await Promise.all(
        Array.from({ length: 60 }, () => fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: opened.signal })),
      );
      expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
      opened.abort();
      const exited = exitWithin(server, 1000);
      server.kill("SIGTERM");
      expect(await exited).toBe(0);
    });
  });
});
