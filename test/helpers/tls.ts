import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { testTempDir } from "./temp-dir.js";

/** A self-signed certificate for 127.0.0.1 and localhost, made with openssl in a temp dir. */
export function createTestCertificate(): { certFile: string; keyFile: string } {
  const dir = testTempDir("rivulet-tls-");
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  return { certFile, keyFile };
}
