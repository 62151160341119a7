#!/usr/bin/env node
// The `rivulet` command (package.json "bin"): runs the compiled CLI, src/cli/main.ts.
// dist/ is made by `npm run build` (and by `npm start`, which builds first).
import process from "node:process";
try {
  await import("../dist/src/cli/main.js");
} catch (error) {
  if (error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("dist/src/cli/main.js")) {
    process.stderr.write("rivulet: the CLI is not built yet; run npm run build in the repository first\n");
    process.exit(1);
  }
  throw error;
}
