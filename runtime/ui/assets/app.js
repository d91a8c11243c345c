// The dashboard's entry: a router over /ui/... (every page has its own URL,
// so an alert can link to it), the caller's identity, the token form and
// the live-feed indicator. Pages live in pages/*.js and export
// render(root, ctx) -> cleanup.

import { h, replace } from './lib/dom.js';
import { api, setToken, token } from './lib/api.js';
import { notify } from './lib/notice.js';
import { onStatus } from './lib/feed.js';
import * as overview from './pages/overview.js';
import * as jobs from './pages/jobs.js';
import * as job from './pages/job.js';
import * as deadLetters from './pages/dead_letters.js';
import * as tree from './pages/tree.js';
import * as pipelines from './pages/pipelines.js';

const routes = [
  [/^\/ui\/?$/, overview, 'Overview'],
  [/^\/ui\/jobs\/?$/, jobs, 'Jobs'],
  [/^\/ui\/jobs\/(.+)$/, job, 'Job'],
  [/^\/ui\/dead-letters\/?$/, deadLetters, 'Dead letters'],
  [/^\/ui\/tree\/?$/, tree, 'Cluster tree'],
  [/^\/ui\/pipelines\/?$/, pipelines, 'Pipelines'],
];

const view = document.getElementById('view');
let cleanup = null;

export function navigate(href, { replaceState = false } = {}) {
  if (replaceState) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  route();
}

function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  notify('');
  // Raw: a page decodes its own parts (a job id may hold '/', '=' or '%').
  const path = location.pathname;
  for (const [re, page, title] of routes) {
    const m = path.match(re);
    if (!m) continue;
    document.title = `${title} · troupe`;
    for (const a of document.querySelectorAll('nav a')) {
      const here = a.getAttribute('href') === '/ui/' ? path === '/ui/' || path === '/ui'
        : path.startsWith(a.getAttribute('href'));
      if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    const root = h('div', { class: 'page' });
    replace(view, root);
    cleanup = page.render(root, { match: m, params: new URLSearchParams(location.search), navigate }) || null;
    return;
  }
  replace(view, h('h1', {}, 'Not found'), h('p', {}, 'No page at ', path, '.'));
}

function signIn(reason) {
  if (document.querySelector('dialog.signin')) return;
  const input = h('input', { type: 'password', id: 'token', autocomplete: 'off', required: true, minlength: 16 });
  const dlg = h('dialog', { class: 'signin', 'aria-label': 'Sign in' },
    h('form', { method: 'dialog', onsubmit: (e) => { e.preventDefault(); setToken(input.value.trim()); location.reload(); } },
      h('h2', {}, 'API token'),
      h('p', {}, reason),
      h('label', { for: 'token' }, 'Bearer token (kept in this tab only)'), input,
      h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Sign in'))));
  document.body.append(dlg);
  dlg.showModal();
}

async function whoami() {
  const who = document.getElementById('who');
  try {
    const s = await api('session');
    const out = h('span', {}, `${s.name} · ${s.role}`);
    if (token()) out.append(' ', h('button', { class: 'link', onclick: () => { setToken(''); location.reload(); } }, 'sign out'));
    replace(who, out);
    document.body.dataset.role = s.role;
  } catch (e) {
    replace(who, '');
  }
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a[href^="/ui"]');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', route);
window.addEventListener('troupe:unauthorized', () => signIn('This node asks for a token (node.api_tokens_file).'));
onStatus((text) => { document.getElementById('live').textContent = text; });
whoami();
route();
