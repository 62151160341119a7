import { execFileSync } from "node:child_process";

/**
 * Builds `dist/` once before the suites: the CLI test starts the server as
 * `npm start` does (compiled JavaScript under plain Node), and the bench
 * smoke test spawns compiled servers as `npm run bench` does.
 */
export default function setup(): void {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
}
