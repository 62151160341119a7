import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Where development mode keeps its secret, relative to the working directory (git-ignored). */
export const developmentSecretPath = join(".rivulet", "dev-secret");

/**
 * Development mode's HS256 secret, kept in a file so that tokens survive a
 * restart and every instance started in the same directory accepts the
 * others' tokens. Created once (32 random bytes, hex, mode 0600 in a 0700
 * directory), then read. Two instances starting at once agree: the file
 * appears whole or not at all (written aside, then hard-linked into place,
 * which fails if it exists), and the loser reads the winner's.
 */
export async function loadDevelopmentSecret(file: string): Promise<Uint8Array> {
  const existing = await readSecret(file);
  if (existing) return existing;
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const aside = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  await writeFile(aside, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  try {
    await link(aside, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  } finally {
    await unlink(aside);
  }
  const secret = await readSecret(file);
  if (!secret) throw new Error(`${file} is empty: delete it to have a new development secret made`);
  return secret;
}

/** The file's secret, or undefined when there is no file yet. */
async function readSecret(file: string): Promise<Uint8Array | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  const secret = text.trim();
  if (secret === "") throw new Error(`${file} is empty: delete it to have a new development secret made`);
  return new TextEncoder().encode(secret);
}
