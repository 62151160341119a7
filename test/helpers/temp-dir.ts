import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A new temporary folder for one test's files (certificates, key sets, a
 * server's working directory). It lives under the run's own folder, which
 * test/global-setup.ts creates and removes when the run ends, so a run leaves
 * nothing behind in the system's temp directory, however a test ends.
 */
export function testTempDir(prefix: string): string {
  return mkdtempSync(join(process.env.RIVULET_TEST_TMPDIR ?? tmpdir(), prefix));
}
