import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "src/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Suites start real servers on free ports; two cores run two files at once.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
