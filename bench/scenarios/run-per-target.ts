import type { Row } from "../lib/results.js";
import { SkipError, startTargetSession, type SessionOptions, type TargetSession } from "../lib/target-session.js";
import type { Target } from "../targets/target.js";

/** A row's identity, before its numbers. */
export type RowHead = Pick<Row, "scenario" | "case" | "target" | "label" | "role" | "family">;

/** The identity of `target`'s row in a case of a scenario. */
export function rowHead(scenario: Row["scenario"], caseName: string, target: Target): RowHead {
  return { scenario, case: caseName, target: target.name, label: target.label, role: target.role, family: target.family };
}

/**
 * Starts each target's server once and measures every case against it. A
 * SkipError (no such bridge, broker refused) turns this and the target's later
 * cases into skipped rows; any other error marks the row and moves on, so one
 * broken target never costs the rest of the run.
 */
export async function runPerTarget(
  scenario: Row["scenario"],
  targets: readonly Target[],
  cases: readonly string[],
  measure: (session: TargetSession, caseName: string, index: number) => Promise<Omit<Row, keyof RowHead>>,
  log: (line: string) => void,
  sessionOptions: SessionOptions = {},
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const target of targets) {
    let session: TargetSession | undefined;
    let skipped: string | undefined;
    try {
      session = await startTargetSession(target, sessionOptions);
    } catch (error) {
      skipped = error instanceof Error ? error.message : String(error);
    }
    for (const [index, caseName] of cases.entries()) {
      const head = rowHead(scenario, caseName, target);
      if (skipped !== undefined || !session) {
        rows.push({ ...head, skipped });
        continue;
      }
      log(`${scenario} · ${caseName} · ${target.label}`);
      try {
        rows.push({ ...head, ...(await measure(session, caseName, index)) });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (error instanceof SkipError) skipped = message;
        rows.push({ ...head, skipped: error instanceof SkipError ? message : `failed: ${message}` });
        await session.closeSubscribers().catch(() => undefined);
      }
      if (skipped) log(`  skipped: ${skipped}`);
    }
    await session?.stop();
  }
  return rows;
}
