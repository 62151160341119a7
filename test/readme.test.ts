import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { settings } from "../src/config.js";
import { describeShellBlocks } from "./docs/describe-shell-blocks.js";

/** Keeps README.md true: every setting documented, the quick-start commands real. */
describe("README", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

  it.each(settings.map((s) => [s.flag, s.env]))("documents --%s and %s in the configuration table", (flag, env) => {
    expect(readme).toMatch(new RegExp(`\\| \`--${flag}\` \\| \`${env}\` \\|`));
  });

  it("names scripts that exist", () => {
    const scripts = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { scripts: Record<string, string> }).scripts;
    for (const [, name] of readme.matchAll(/npm (?:run )?([a-z:]+)/g)) {
      if (name === "install" || name === "ci") continue;
      expect(scripts, `npm ${name}`).toHaveProperty(name!);
    }
  });
});

// Every command of the README, run as written against a real server (test/docs/).
describeShellBlocks("README.md");
