import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: markdown paths, `examples/` and shell blocks are relative to it. */
export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/**
 * What the HTML comment on the line before a fence says about the block:
 * `<!-- example: examples/x.ts -->` the block is that whole file;
 * `<!-- excerpt: examples/x.py -->` the block appears verbatim in that file;
 * `<!-- not-run: reason -->` the block is not executed, for the reason given.
 * A block with no comment is run when it is `sh`.
 */
export type BlockMarker = { readonly kind: "example" | "excerpt" | "not-run"; readonly value: string };

/** One fenced code block of a markdown file. */
export interface CodeBlock {
  /** The markdown file, relative to the repository root. */
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** The fence's info string ("" for a wire-format illustration). */
  readonly lang: string;
  /** The block's text, each line ending with "\n". */
  readonly body: string;
  readonly marker: BlockMarker | undefined;
}

const markerPattern = /^<!-- (example|excerpt|not-run): (.+?) -->$/;

/** The fenced code blocks (``` fences, as every doc here uses) of a markdown file. */
export function codeBlocks(file: string): CodeBlock[] {
  const lines = readFileSync(join(repoRoot, file), "utf8").split("\n");
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    let body = "";
    for (i++; i < lines.length && !lines[i]!.startsWith("```"); i++) body += `${lines[i]}\n`;
    const marked = markerPattern.exec(lines[start - 1] ?? "");
    const marker = marked ? { kind: marked[1] as BlockMarker["kind"], value: marked[2]! } : undefined;
    blocks.push({ file, line: start + 1, lang: open[1]!, body, marker });
  }
  return blocks;
}

/**
 * The output a shell block promises: its whole-line comments after the first
 * command (`# ` stripped, a bare `#` is an empty line), as a pattern where `…`
 * stands for any text. Undefined when the block promises none.
 */
export function expectedOutput(body: string): RegExp | undefined {
  const lines = body.split("\n");
  const firstCommand = lines.findIndex((line) => line.trim() !== "" && !line.startsWith("#"));
  const comments = lines.slice(firstCommand + 1).filter((line) => line === "#" || line.startsWith("# "));
  if (comments.length === 0) return undefined;
  const text = comments.map((line) => line.slice(2)).join("\n");
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(escaped.split("…").join("[\\s\\S]*?"));
}
