// `npm run apikey -- new NAME`: makes an API key for rivulet.admin.v1.AdminService
// (docs/security.md, "Server API"). Prints the key, which only the backend
// keeps, and the line for --api-keys-file, which holds the key's SHA-256
// only. Plain JavaScript so that it runs without a build; `rivulet apikey new`
// will do the same.
import { createHash, randomBytes } from "node:crypto";
import process from "node:process";

const usage = "usage: npm run apikey -- new NAME   (NAME: 1 to 64 letters, digits, '.', '_' or '-')\n";
const [command, name, ...rest] = process.argv.slice(2);
if (command !== "new" || name === undefined || rest.length > 0 || !/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
  process.stderr.write(usage);
  process.exit(2);
}
// 32 random bytes: guessing is hopeless, so the file may list a plain SHA-256 of the key.
const key = `rvk_${randomBytes(32).toString("base64url")}`;
const line = `${createHash("sha256").update(key, "utf8").digest("hex")} ${name}`;
process.stdout.write(
  [
    `API key "${name}" (give it to your backend, as Authorization: Bearer <key>; it is shown only now):`,
    "",
    `  ${key}`,
    "",
    "Line for the file passed as --api-keys-file (RIVULET_API_KEYS_FILE); the server reads it at start:",
    "",
    `  ${line}`,
    "",
  ].join("\n"),
);
