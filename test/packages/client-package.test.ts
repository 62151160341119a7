// @rivulet/client as a user gets it: `npm pack` in packages/client, the
// tarball installed with its peers into an empty project outside the
// repository (so nothing resolves to the repository's own node_modules), then
// a plain Node script and an esbuild bundle in headless Chromium, both from
// that project, against a real server.
import { execFile } from "node:child_process";
import { copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, serveBundledPage, type BundledPage } from "../helpers/browser.js";
import { startTestServer, type TestServer } from "../helpers/server.js";
import { hasChromium } from "../helpers/system.js";
import { testTempDir } from "../helpers/temp-dir.js";

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const packageDir = join(repoRoot, "packages/client");
const fixtures = fileURLToPath(new URL("project/", import.meta.url));
const rootPackage = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { dependencies: Record<string, string> };
/** The peers at the versions the server itself runs on. */
const peers = ["@bufbuild/protobuf", "@connectrpc/connect"].map((name) => `${name}@${rootPackage.dependencies[name]}`);

/** npm as a user runs it: without the npm_* settings `npm test` passes to its children (workspace, package, lifecycle). */
function npm(args: readonly string[], cwd: string) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name) && name !== "INIT_CWD"));
  return run("npm", [...args], { cwd, env, maxBuffer: 16 * 1024 * 1024 });
}

/** Every file under `dir`, relative to it. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((name) => statSync(join(dir, name)).isFile());
}

interface PackResult {
  readonly filename: string;
  readonly size: number;
  readonly files: readonly { readonly path: string }[];
}

describe("the packed @rivulet/client", () => {
  let server: TestServer;
  let pack: PackResult;
  let project: string;

  beforeAll(async () => {
    const packDir = testTempDir("rivulet-pack-");
    // prepack builds dist/ from src/client, src/wire and gen/.
    const { stdout } = await npm(["pack", "--json", "--pack-destination", packDir], packageDir);
    pack = (JSON.parse(stdout.slice(stdout.indexOf("["))) as PackResult[])[0]!;
    project = testTempDir("rivulet-client-project-");
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "client-package-test", private: true, type: "module" }));
    await npm(["install", "--prefer-offline", "--no-audit", "--no-fund", join(packDir, pack.filename), ...peers], project);
    server = await startTestServer();
  }, 120_000);
  afterAll(async () => {
    await server?.close();
  });

  it("holds package.json and dist/ only: the client, the wire modules it uses, the public services' descriptors", () => {
    const paths = pack.files.map((file) => file.path);
    expect(paths.filter((path) => !path.startsWith("dist/"))).toEqual(["package.json"]);
    const sources = paths.filter((path) => path.startsWith("dist/src/")).map((path) => path.split("/").slice(0, 3).join("/"));
    expect([...new Set(sources)].sort()).toEqual(["dist/src/client", "dist/src/wire"]);
    const services = paths.filter((path) => path.startsWith("dist/gen/")).map((path) => path.split("/")[3]);
    expect([...new Set(services)].sort()).toEqual(["admin", "bridge", "chat", "notify", "options", "progress", "stream"]);
  });

  it("imports only its own files and its peers, and every exports entry names a file it has", () => {
    const installed = join(project, "node_modules/@rivulet/client");
    for (const file of filesUnder(installed).filter((name) => name.endsWith(".js") || name.endsWith(".d.ts"))) {
      const text = readFileSync(join(installed, file), "utf8");
      for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)) {
        if (specifier!.startsWith(".")) {
          const target = resolve(dirname(join(installed, file)), specifier!);
          expect(relative(installed, target).startsWith(".."), `${file} imports ${specifier}`).toBe(false);
          expect(statSync(target).isFile(), `${file} imports ${specifier}`).toBe(true);
        } else {
          expect(specifier, `${file} imports ${specifier}`).toMatch(/^@(bufbuild\/protobuf|connectrpc\/connect)(\/|$)/);
        }
      }
    }
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8")) as {
      exports: Record<string, string | Record<string, string>>;
      peerDependencies: Record<string, string>;
    };
    for (const [subpath, entry] of Object.entries(manifest.exports)) {
      for (const target of typeof entry === "string" ? [entry] : Object.values(entry)) {
        expect(statSync(join(installed, target)).isFile(), `${subpath} -> ${target}`).toBe(true);
      }
    }
    expect(manifest.peerDependencies).toEqual({
      "@bufbuild/protobuf": rootPackage.dependencies["@bufbuild/protobuf"],
      "@connectrpc/connect": rootPackage.dependencies["@connectrpc/connect"],
    });
  });

  it("subscribes, sends and resumes from a cursor in a plain Node script", async () => {
    copyFileSync(join(fixtures, "node-client.mjs"), join(project, "node-client.mjs"));
    const { stdout } = await run(process.execPath, ["node-client.mjs"], {
      cwd: project,
      env: { ...process.env, RIVULET_URL: server.url, RIVULET_TOKEN: await server.token("alice"), ROOM: "package-node" },
    });
    expect(stdout.split("\n")).toEqual([
      "one ChatService descriptor: true",
      "retryable: Unavailable, Aborted, DeadlineExceeded; unavailable true",
      "websocket: alice: one",
      "websocket: alice: two",
      "websocket: alice: three",
      "websocket from one's cursor: two",
      "websocket from one's cursor: three",
      "sse from one's cursor: two",
      "sse from one's cursor: three",
      "",
    ]);
  });

  describe.skipIf(!hasChromium())("bundled with esbuild, in headless Chromium", () => {
    let browser: Browser;
    let page: Page;
    let pageServer: BundledPage;
    /** The server the page calls: it allows the page's origin. */
    let pageTarget: TestServer;

    beforeAll(async () => {
      copyFileSync(join(fixtures, "browser-client.ts"), join(project, "browser-client.ts"));
      // Resolved from the project: the tarball's files and its peers, nothing of the repository.
      pageServer = await serveBundledPage(join(project, "browser-client.ts"), project);
      const pageOrigin = pageServer.origin;
      pageTarget = await startTestServer({ config: { allowedOrigins: [pageOrigin] } });
      browser = await launchChromium();
      page = await browser.newPage();
      await page.goto(`${pageOrigin}/`);
    }, 60_000);
    afterAll(async () => {
      await browser?.close();
      await pageTarget?.close();
      await pageServer?.close();
    });

    it.each(["websocket", "sse"] as const)("subscribes and sends over %s", async (kind) => {
      const token = await pageTarget.token("bob");
      const lines = await page.evaluate(([k, url, t, room]) => window.chatOver(k, url, t, room), [
        kind,
        pageTarget.url,
        token,
        `package-browser-${kind}`,
      ] as const);
      expect(lines).toEqual([`bob: sent before subscribing over ${kind}`, `bob: sent while subscribed over ${kind}`]);
    });
  });
});
