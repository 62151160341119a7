import { chromium, type Browser } from "playwright-core";
import { chromiumPath } from "./system.js";

/**
 * Launches Debian's headless Chromium. The flags keep it off the network
 * (this machine reaches only package registries) and fit running as root.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
}
