// Building elements without innerHTML: every string child becomes a text node, so visitor,
// agent and bot text can never turn into markup.

/**
 * h("button", {class: "x", type: "button", onclick: fn, "aria-label": "..."}, "text", child)
 * Props starting with "on" become listeners; `hidden`/`disabled`/`checked`/`value` are set as
 * properties; everything else is an attribute. null/undefined/false children are skipped.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      node.className = value;
    } else if (["hidden", "disabled", "checked", "value", "selected"].includes(name)) {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

/** Replace all children of `node` with `children` (strings as text). */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export function byId(id) {
  return document.getElementById(id);
}
