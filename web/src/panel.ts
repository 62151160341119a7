import type { Connection } from "./connection.js";
import type { Identity } from "./identity.js";
import type { LinkState } from "./link-state.js";

/** What a panel needs from the page around it. */
export interface PanelHost {
  readonly identity: Identity;
  /** What a panel's stream knows of the connection (a reconnect with its delay). */
  onState(state: LinkState): void;
  /** Shows an error in the page's status line: nothing is swallowed. */
  onError(error: string): void;
}

/** One of the demo's panels (notifications, jobs, assistant): its streams follow the connection the user picked. */
export interface Panel {
  /**
   * Follows the panel's streams on `connection`, resuming each from its last
   * cursor: a new transport continues where the old one stopped, with nothing
   * missed and nothing twice. The caller closes the old connection.
   */
  attach(connection: Connection): void;
  /** Stops the panel's streams and forms (the user left). */
  leave(): void;
}
