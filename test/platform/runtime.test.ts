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

  it(".nvmrc and the README name the same major as engines, and the tests run on it or later", () => {
    expect(read(".nvmrc").trim()).toBe(String(minimum));
    expect(read("README.md")).toContain(`Node.js ${minimum} or later`);
    expect(Number(process.versions.node.split(".")[0]), `running Node ${process.versions.node}`).toBeGreaterThanOrEqual(minimum);
  });

  it("has the global WebSocket the typed WebSocket client defaults to", () => {
    expect(typeof (globalThis as { WebSocket?: unknown }).WebSocket).toBe("function");
  });
});
