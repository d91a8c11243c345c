// One live feed per tab: GET /api/v1/events (Server-Sent Events) read with
// fetch, because EventSource cannot send the Authorization header. Pages
// subscribe and unsubscribe; the connection stays open across pages and
// reconnects with a growing pause when the node goes away.

import { authHeaders } from './api.js';

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

async function readOnce() {
  const res = await fetch('/api/v1/events', { headers: authHeaders(), cache: 'no-store' });
  if (!res.ok) throw new Error(`feed: HTTP ${res.status}`);
  status('feed: live');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      dispatch(buf.slice(0, at));
      buf = buf.slice(at + 2);
    }
  }
}

async function start() {
  if (running) return;
  running = true;
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
