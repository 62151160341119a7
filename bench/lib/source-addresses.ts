/**
 * Loopback source addresses the load generator spreads connections over: each
 * 127.0.0.x has its own ephemeral port range, so 10,000 connections never run
 * out of ports, and the kernel hashes them like connections from many hosts.
 */
export function sourceAddresses(count = 8): string[] {
  return Array.from({ length: count }, (_, index) => `127.0.0.${index + 1}`);
}
