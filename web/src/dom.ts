/** The element with `id`, which the page must have: a missing one is a bug in web/index.html, not a state to handle. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`web/index.html has no #${id}`);
  return element as T;
}

/** An element with text content (never innerHTML: names and messages come from other users). */
export function element(tag: string, text: string, className?: string): HTMLElement {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
}
