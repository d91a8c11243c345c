// The live feed: GET /api/v1/events (Server-Sent Events) read with fetch,
// because EventSource cannot send the Authorization header. Where the
// browser has SharedWorker, one feed serves every tab (feed_worker.js);
// otherwise this tab reads its own. Pages subscribe and unsubscribe; the
// connection stays open across pages and reconnects with a growing pause
// when the node goes away.

import { authHeaders, token } from './api.js';
import { readFeed } from './sse.js';

const listeners = new Set();
const statusListeners = new Set();
let running = false;

export function onEvent(fn) {
  listeners.add(fn);
  start();
  return () => listeners.delete(fn);
}

export function onStatus(fn) {
  statusListeners.add(fn);
  return () => statusListeners.delete(fn);
}

function status(text) {
  for (const fn of statusListeners) fn(text);
}

function dispatch(frame) {
  let type = 'message';
  let data = '';
  for (const line of frame.split('\n')) {
    if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trim();
  }
  if (!data) return;
  let doc;
  try { doc = JSON.parse(data); } catch { return; }
  if (type === 'dropped') { status(`feed: ${doc.dropped} events dropped`); return; }
  for (const fn of listeners) {
    try { fn(doc); } catch (e) { console.error(e); }
  }
}

function readOnce() {
  return readFeed(authHeaders(), undefined, () => status('feed: live'), dispatch);
}

function startShared() {
  const worker = new SharedWorker('/ui/assets/feed_worker.js', { name: 'troupe-feed', type: 'module' });
  worker.port.onmessage = ({ data }) => {
    if (data.status) status(data.status);
    if (data.frame) dispatch(data.frame);
  };
  worker.port.postMessage({ token: token() });
  window.addEventListener('pagehide', () => worker.port.postMessage({ bye: true }));
}

async function start() {
  if (running) return;
  running = true;
  if (typeof SharedWorker === 'function') {
    try { startShared(); return; } catch (e) { console.warn('shared feed unavailable', e); }
  }
  let pause = 500;
  for (;;) {
    const began = Date.now();
    try { await readOnce(); } catch (e) { status(String(e.message || e)); }
    if (Date.now() - began > 10000) pause = 500;
    status('feed: reconnecting');
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 10000);
  }
}
