// The live feed: GET /api/v1/events (Server-Sent Events) read with fetch,
// because EventSource cannot send the Authorization header. Where the
// browser has SharedWorker, one feed serves every tab (feed_worker.js);
// otherwise this tab reads its own (lib/feed_conn.js). Pages subscribe
// with what they draw ({types: [...]} or {jobs: [id]}; nothing: every
// event) and the node sends only that, so an open page costs the node
// what it shows. The connection stays open across pages and reconnects
// with a growing pause when the node goes away.

import { authHeaders, token } from './api.js';
import { feedConnection, queryOf, wants } from './feed_conn.js';

const listeners = new Map(); // fn -> filter
const statusListeners = new Set();
let sink = null; // (filter) => void, once started
let pending = null;

export function onEvent(fn, filter = null) {
  listeners.set(fn, filter);
  start();
  changed();
  return () => { listeners.delete(fn); changed(); };
}

export function onStatus(fn) {
  statusListeners.add(fn);
  return () => statusListeners.delete(fn);
}

function status(text) {
  for (const fn of statusListeners) fn(text);
}

// A page change unsubscribes one page and subscribes the next in a row:
// one new filter for both.
function changed() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; if (sink) sink(wants(listeners.values())); }, 30);
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
  for (const fn of [...listeners.keys()]) {
    try { fn(doc); } catch (e) { console.error(e); }
  }
}

function startShared() {
  const worker = new SharedWorker('/ui/assets/feed_worker.js', { name: 'troupe-feed', type: 'module' });
  worker.port.onmessage = ({ data }) => {
    if (data.status) status(data.status);
    if (data.frame) dispatch(data.frame);
  };
  worker.port.postMessage({ token: token(), filter: wants(listeners.values()) });
  window.addEventListener('pagehide', () => worker.port.postMessage({ bye: true }));
  return (filter) => worker.port.postMessage({ filter });
}

function startOwn() {
  const conn = feedConnection(authHeaders(), status, dispatch);
  return (filter) => conn.set(queryOf(filter));
}

function start() {
  if (sink) return;
  if (typeof SharedWorker === 'function') {
    try { sink = startShared(); return; } catch (e) { console.warn('shared feed unavailable', e); }
  }
  sink = startOwn();
  sink(wants(listeners.values()));
}
