import type { Panel, PanelHost } from "./panel.js";

/** The jobs panel in #jobs: demo jobs: start several, watch each bar. */
export function createJobsPanel(host: PanelHost): Panel {
  void host;
  return {
    attach() {},
    leave() {},
  };
}
