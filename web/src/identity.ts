import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Who this tab is. The name lives in sessionStorage, not in a cookie: a
 * cookie is shared by every tab of the browser, and the demo is meant to be
 * two users in two tabs. Tokens come from development mode's /dev/token and
 * are kept until the server refuses one (`forget`), then minted again: the
 * server keeps its development secret on disk, so a token outlives a restart,
 * and a refused one means a new secret or an expired token.
 */
export interface Identity {
  readonly user: string;
  /**
   * A token for `user`, minted on first use, after `forget`, and when the
   * client says the server refused the one it has (`refused`, as
   * @rivulet/client's token functions are asked).
   */
  token(request?: { readonly refused?: string }): Promise<string>;
  /** Drops the current token: the server refused it. */
  forget(): void;
}

const storageKey = "rivulet-demo-user";

/** Whether this tab joined before (a reload): the page then joins again by itself. */
export function joinedBefore(): boolean {
  return sessionStorage.getItem(storageKey) !== null;
}

/** The tab's remembered user name, or a fresh `guest-xxxx`. */
export function rememberedUser(): string {
  return sessionStorage.getItem(storageKey) ?? `guest-${Math.random().toString(36).slice(2, 6)}`;
}

export function createIdentity(user: string): Identity {
  sessionStorage.setItem(storageKey, user);
  let pending: Promise<string> | undefined;
  let latest: string | undefined;
  return {
    user,
    token(request = {}) {
      if (request.refused !== undefined && request.refused === latest) pending = undefined;
      pending ??= mint(user).then(
        (token) => (latest = token),
        (error: unknown) => {
          pending = undefined;
          throw error;
        },
      );
      return pending;
    },
    forget() {
      pending = undefined;
    },
  };
}

async function mint(user: string): Promise<string> {
  const response = await fetch(`/dev/token?user=${encodeURIComponent(user)}`, { cache: "no-store" });
  if (response.status === 404) throw new Error("this server has no /dev/token: it runs with real credentials (--auth-secret), which the demo cannot mint");
  if (!response.ok) throw new Error(`/dev/token answered ${response.status}: ${(await response.text()).trim()}`);
  return response.text();
}

/**
 * Runs a unary call, and once more with a new token when the server refused
 * the one `identity` had (it expired, or the server has a new development
 * secret). The WebSocket transport does this by itself, telling the token
 * function what it refused; Connect-Web's fetch, which takes the token from
 * an interceptor, does not.
 */
export async function withFreshToken<T>(identity: Identity, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const failure = ConnectError.from(error);
    if (failure.code !== Code.Unauthenticated) throw failure;
    identity.forget();
    return run();
  }
}
