import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { describeShellBlocks, runnableShellBlocks } from "./describe-shell-blocks.js";
import { codeBlocks, repoRoot, type CodeBlock } from "./markdown-blocks.js";

/** The docs whose code must work as written (README.md's shell blocks run in test/readme.test.ts). */
const markdownFiles = [
  "README.md",
  ...readdirSync(join(repoRoot, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`),
];
const blocks = markdownFiles.flatMap((file) => codeBlocks(file));
/** Files under examples/, relative to the repository root; not the Python messages docs/cross-language.md generates into examples/python/gen/ (git-ignored). */
const examples = readdirSync(join(repoRoot, "examples"), { recursive: true, encoding: "utf8" })
  .filter((name) => /\.(ts|py)$/.test(name) && !name.startsWith("python/gen/"))
  .map((name) => `examples/${name}`);

/** A file's lines without their indentation, so an excerpt of an indented block compares. */
const unindented = (text: string) => text.split("\n").map((line) => line.trim());

describe("code blocks in README.md and docs/", () => {
  // Untagged fences are wire-format illustrations (HTTP, SSE text, frame layouts), not code.
  it.each(blocks.filter((block) => block.lang !== "").map((block) => [`${block.file}:${block.line}`, block] as const))(
    "%s is a file under examples/, a shell block this suite runs, or marked not-run with a reason",
    (_, block: CodeBlock) => {
      const { marker } = block;
      if (marker?.kind === "example") {
        expect(block.body, `${marker.value} differs from the block quoting it`).toBe(readFileSync(join(repoRoot, marker.value), "utf8"));
      } else if (marker?.kind === "excerpt") {
        expect(unindented(readFileSync(join(repoRoot, marker.value), "utf8")).join("\n")).toContain(unindented(block.body.trimEnd()).join("\n"));
      } else if (marker?.kind === "not-run") {
        expect(marker.value.length, "say why the block cannot run").toBeGreaterThan(20);
      } else {
        expect(block.lang, "only sh blocks run; keep other code in examples/ and quote it with <!-- example: … -->").toBe("sh");
      }
    },
  );

  it("leaves few blocks unrun: README's quick start only", () => {
    expect(blocks.filter((block) => block.marker?.kind === "not-run").map((block) => block.file)).toEqual(["README.md"]);
  });

  it.each(examples)("%s is quoted by the docs and run by one of their shell blocks", (example) => {
    expect(blocks.some((block) => block.marker?.kind === "example" && block.marker.value === example)).toBe(true);
    const runs = markdownFiles.flatMap((file) => runnableShellBlocks(file)).filter((block) => block.body.includes(example));
    expect(runs.length, `no shell block runs ${example}`).toBeGreaterThan(0);
  });
});

for (const file of markdownFiles) if (file !== "README.md") describeShellBlocks(file);
