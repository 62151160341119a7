import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

/** A file of this checkout, as text. */
const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

/** The major version a range like ">=22" or ">=22.12.0" starts at. */
const minimumMajor = (range: string) => Number(/^>=\s*(\d+)/.exec(range)?.[1]);

/** Keeps the Node version Rivulet names in one place true: engines, .nvmrc, README, and the runtime running the tests. */
describe("the Node runtime", () => {
  const engines = (JSON.parse(read("package.json")) as { engines: { node: string } }).engines.node;
  const minimum = minimumMajor(engines);

  it("package.json's engines ask at least what @connectrpc/connect-node's engines ask", () => {
    const connectNode = (JSON.parse(read("node_modules/@connectrpc/connect-node/package.json")) as { engines: { node: string } }).engines.node;
    expect(minimum, `engines ${engines} vs connect-node's ${connectNode}`).toBeGreaterThanOrEqual(minimumMajor(connectNode));
  });

  it(".nvmrc names the major of engines, the README its version, and the tests run on it or later", () => {
    const version = /^>=\s*([\d.]+)/.exec(engines)?.[1] ?? "";
    expect(read(".nvmrc").trim()).toBe(String(minimum));
    expect(read("README.md")).toContain(`Node.js ${version} or later`);
    const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
    const [wantMajor = 0, wantMinor = 0] = version.split(".").map(Number);
    expect(major * 1000 + minor, `running Node ${process.versions.node}`).toBeGreaterThanOrEqual(wantMajor * 1000 + wantMinor);
  });

  it("has the global WebSocket the typed WebSocket client defaults to", () => {
    expect(typeof (globalThis as { WebSocket?: unknown }).WebSocket).toBe("function");
  });
});
