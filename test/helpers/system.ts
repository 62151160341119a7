import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

/** Debian's Python, where python3-grpcio, python3-protobuf and python3-websockets install (not a pyenv shim). */
export const debianPython = "/usr/bin/python3";
export const chromiumPath = "/usr/bin/chromium";

/**
 * Whether a system dependency of a suite is present. On a developer machine
 * without it the suite skips, with the reason printed; under CI=true a missing
 * dependency is an error, so CI can never pass by skipping.
 */
export function hasSystemDependency(what: string, present: () => boolean, install: string): boolean {
  let ok: boolean;
  try {
    ok = present();
  } catch {
    ok = false;
  }
  if (ok) return true;
  const message = `${what} is missing (${install})`;
  if (process.env.CI === "true") throw new Error(`${message}: required under CI`);
  console.warn(`skipping: ${message}`);
  return false;
}

/** Debian's Python with the given modules importable. */
export function hasPythonModules(modules: readonly string[], packages: string): boolean {
  return hasSystemDependency(
    `python modules ${modules.join(", ")}`,
    () => {
      execFileSync(debianPython, ["-c", modules.map((m) => `import ${m}`).join("; ")], { stdio: "ignore" });
      return true;
    },
    `apt-get install ${packages}`,
  );
}

/** Debian's Chromium. */
export function hasChromium(): boolean {
  return hasSystemDependency("chromium", () => existsSync(chromiumPath), "apt-get install chromium");
}

/** protoc, to generate Python messages from our protos. */
export function hasProtoc(): boolean {
  return hasSystemDependency(
    "protoc",
    () => {
      execFileSync("protoc", ["--version"], { stdio: "ignore" });
      return true;
    },
    "apt-get install protobuf-compiler",
  );
}
