import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clusterUrlVariable, startTestCluster } from "./broker/test-cluster.js";

/**
 * Builds `dist/`, the client package and the demo's bundle once before the suites: the CLI test starts the server as
 * `npm start` does (compiled JavaScript under plain Node), and the bench
 * smoke test spawns compiled servers as `npm run bench` does.
 *
 * Also makes the run's temporary folder (`testTempDir` in
 * test/helpers/temp-dir.ts puts every test's files in it; the test workers
 * inherit its path from the environment) and removes it when the run ends.
 *
 * And starts the run's shared Redis Cluster (3 masters, 3 replicas, see
 * test/broker/test-cluster.ts), whose URL the workers inherit as
 * RIVULET_TEST_CLUSTER_URL; without redis-server the cluster suites skip
 * (and fail under CI=true).
 */
export default async function setup(): Promise<() => Promise<void>> {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
  // The files tsc does not copy (the Redis broker's Lua scripts), as `npm run build` does.
  execFileSync(process.execPath, ["scripts/copy-assets.mjs"], { stdio: "inherit" });
  // @rivulet/client from the sources under test (the demo imports it), then the demo's bundle
  // (web/dist/app.js), which the demo's browser tests load from GET /app.js.
  execFileSync("npm", ["run", "--silent", "build", "--workspace", "@rivulet/client"], { stdio: "inherit" });
  execFileSync(process.execPath, ["scripts/build-web.mjs"], { stdio: "inherit" });
  const dir = mkdtempSync(join(tmpdir(), "rivulet-test-run-"));
  process.env.RIVULET_TEST_TMPDIR = dir;
  const cluster = await startSharedCluster();
  if (cluster) process.env[clusterUrlVariable] = cluster.url;
  return async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}

async function startSharedCluster(): Promise<Awaited<ReturnType<typeof startTestCluster>> | undefined> {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" });
  } catch {
    return undefined; // the suites report it (clusterAvailable in test/broker/test-cluster.ts)
  }
  // Free ports are picked before the servers bind them: another process may take one meanwhile.
  return startTestCluster().catch(() => startTestCluster());
}
