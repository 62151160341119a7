import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const script = join(root, "scripts/check-breaking.sh");
const chatProto = "proto/rivulet/chat/v1/chat.proto";

/** Runs scripts/check-breaking.sh on a repository; resolves with its exit code and output instead of throwing. */
async function checkBreaking(repo: string, env: Record<string, string> = {}): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run("bash", [script, repo], { env: { ...process.env, ...env } });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout + failed.stderr };
  }
}

/** A throwaway git repository holding a copy of our buf.yaml and proto/. */
function schemaRepo(): { dir: string; git: (...args: string[]) => Promise<unknown>; renameText: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "rivulet-breaking-"));
  cpSync(join(root, "proto"), join(dir, "proto"), { recursive: true });
  cpSync(join(root, "buf.yaml"), join(dir, "buf.yaml"));
  const git = (...args: string[]) => run("git", ["-c", "user.name=test", "-c", "user.email=test@example.invalid", ...args], { cwd: dir });
  const renameText = () => {
    const file = join(dir, chatProto);
    const renamed = readFileSync(file, "utf8").replaceAll("string text = ", "string body = ");
    expect(renamed).toContain("string body = ");
    writeFileSync(file, renamed);
  };
  return { dir, git, renameText };
}

describe("scripts/check-breaking.sh (buf breaking in npm test)", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** A repository with two commits of the unchanged schema plus `main` at the first. */
  async function twoCommits() {
    const repo = schemaRepo();
    dirs.push(repo.dir);
    await repo.git("init", "-q", "-b", "main");
    await repo.git("add", "-A");
    await repo.git("commit", "-qm", "schema");
    await repo.git("commit", "-q", "--allow-empty", "-m", "unrelated");
    return repo;
  }

  it("is part of npm test", () => {
    const scripts = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
    expect(scripts["check:breaking"]).toBe("bash scripts/check-breaking.sh");
    expect(scripts.test).toContain("npm run check:breaking");
  });

  it("passes when the schema is unchanged", async () => {
    const { dir } = await twoCommits();
    const result = await checkBreaking(dir);
    expect(result, result.output).toMatchObject({ code: 0 });
    expect(result.output).toMatch(/compatible with [0-9a-f]+ schema/);
  });

  it("fails when chat's `text` is renamed to `body`, committed on main or not", async () => {
    const repo = await twoCommits();
    repo.renameText();
    const uncommitted = await checkBreaking(repo.dir);
    expect(uncommitted.code, uncommitted.output).toBe(1);
    expect(uncommitted.output).toMatch(/changed name from "text" to "body"/);

    await repo.git("commit", "-qam", "rename");
    const committed = await checkBreaking(repo.dir);
    expect(committed.code, committed.output).toBe(1);
    expect(committed.output).toMatch(/breaks the schema of [0-9a-f]+ unrelated/);
  });

  it("compares a branch with its merge base, so an early commit's rename is caught", async () => {
    const repo = await twoCommits();
    await repo.git("checkout", "-qb", "feature");
    repo.renameText();
    await repo.git("commit", "-qam", "rename");
    await repo.git("commit", "-q", "--allow-empty", "-m", "later");
    const result = await checkBreaking(repo.dir);
    expect(result.code, result.output).toBe(1);
    expect(result.output).toMatch(/breaks the schema of [0-9a-f]+ unrelated/);
  });

  it("skips with a clear message without history to compare with", async () => {
    const repo = schemaRepo();
    dirs.push(repo.dir);
    expect(await checkBreaking(repo.dir)).toMatchObject({ code: 0, output: expect.stringMatching(/skipped: .* not the top of a git checkout/) });
    await repo.git("init", "-q");
    await repo.git("add", "-A");
    await repo.git("commit", "-qm", "first");
    expect(await checkBreaking(repo.dir)).toMatchObject({ code: 0, output: expect.stringMatching(/skipped: HEAD has no parent/) });
  });
});
