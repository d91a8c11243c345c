// Small DOM helpers. Text is always set as text (never parsed as HTML), so
// a job id, payload or error message cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/// A link inside the dashboard (the router takes it: no page load).
export function link(href, text, attrs = {}) {
  return h('a', { href, ...attrs }, text);
}

export function jobHref(id) {
  return '/ui/jobs/' + id.split('/').map(encodeURIComponent).join('/');
}

export function time(ms) {
  if (!ms) return '–';
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

export function duration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3600000) return `${Math.floor(ms / 60000)} m ${Math.round((ms % 60000) / 1000)} s`;
  return `${Math.floor(ms / 3600000)} h ${Math.round((ms % 3600000) / 60000)} m`;
}

export function badge(state) {
  return h('span', { class: `badge s-${state}` }, state.replace('_', ' '));
}

export function errorCode(text) {
  const at = (text || '').indexOf(':');
  return at > 0 ? text.slice(0, at) : text || '';
}

export function table(headers, rows, attrs = {}) {
  return h('div', { class: 'scroll' },
    h('table', attrs,
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows)));
}

/// Asks before a steering action; resolves true when confirmed.
export function confirmDialog(message, action) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'confirm', 'aria-label': 'Confirm' },
      h('p', { text: message }),
      h('div', { class: 'row' },
        h('button', { class: 'danger', value: 'yes', onclick: () => close(true) }, action),
        h('button', { value: 'no', onclick: () => close(false) }, 'Keep as is')));
    function close(yes) { dlg.close(); dlg.remove(); resolve(yes); }
    dlg.addEventListener('cancel', () => close(false));
    document.body.append(dlg);
    dlg.showModal();
  });
}
