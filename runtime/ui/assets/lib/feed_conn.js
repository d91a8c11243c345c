// One live feed connection whose filter can change (the pages open in a
// browser change what they draw). Shared by the tab (lib/feed.js) and the
// shared worker (feed_worker.js).
//
// A filter is {types: [...], jobs: [...]} (an event passes if its type or
// its job is listed) or null for every event; wants() merges the filters
// of everything listening. A new filter opens a new connection and drops
// the old one only once the new one is open, so a switch loses no event;
// a frame that arrives on both is passed once (an event's JSON, with its
// job, type and time, names it).

import { readFeed } from './sse.js';

export function wants(filters) {
  const types = new Set();
  const jobs = new Set();
  for (const f of filters) {
    if (!f) return null;
    for (const t of f.types || []) types.add(t);
    for (const j of f.jobs || []) jobs.add(j);
  }
  return { types: [...types].sort(), jobs: [...jobs].sort() };
}

export function queryOf(filter) {
  // More job pages than one filter may name (64, ids up to 1,024 bytes):
  // every event, which the pages filter themselves.
  if (!filter || filter.jobs.length > 64 || filter.jobs.some((j) => new TextEncoder().encode(j).length > 1024)) return '';
  const parts = [];
  if (filter.types.length) parts.push(`types=${filter.types.map(encodeURIComponent).join(',')}`);
  for (const j of filter.jobs) parts.push(`job=${encodeURIComponent(j)}`);
  // Nothing wanted at all: a type no event has keeps the feed quiet.
  return parts.length ? parts.join('&') : 'types=none';
}

export function feedConnection(headers, onStatus, onFrame) {
  let current = null; // {query, ctrl, open, prev}
  const seen = new Set();
  const order = [];

  function pass(frame) {
    if (seen.has(frame)) return;
    seen.add(frame);
    order.push(frame);
    if (order.length > 1024) seen.delete(order.shift());
    onFrame(frame);
  }

  function opened(conn) {
    conn.open = true;
    if (conn.prev) { conn.prev.ctrl.abort(); conn.prev = null; }
    onStatus('feed: live');
  }

  async function run(conn) {
    let pause = 500;
    const { signal } = conn.ctrl;
    while (!signal.aborted) {
      const began = Date.now();
      try {
        await readFeed(headers, signal, conn.query, () => opened(conn),
          (frame) => { if (!signal.aborted) pass(frame); });
      } catch (e) {
        if (signal.aborted) return;
        onStatus(String(e.message || e));
      }
      if (signal.aborted) return;
      if (Date.now() - began > 10000) pause = 500;
      onStatus('feed: reconnecting');
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 10000);
    }
  }

  return {
    /// Reads with `query` from now on (unchanged: nothing happens).
    set(query) {
      if (current && current.query === query) return;
      const conn = { query, ctrl: new AbortController(), open: false, prev: current };
      // A connection that never opened is replaced outright; the last
      // open one stays until the new one is open.
      if (current && !current.open) { current.ctrl.abort(); conn.prev = current.prev; }
      current = conn;
      run(conn);
    },
    close() {
      if (!current) return;
      current.ctrl.abort();
      if (current.prev) current.prev.ctrl.abort();
      current = null;
    },
  };
}
