// One live feed per browser (a SharedWorker): every tab of the dashboard
// on this node shares it. Each tab holding its own Server-Sent Events
// connection would use one of the browser's six HTTP/1.1 connections per
// host, and the seventh tab would hang. Tabs send {token} to join and
// {bye: true} when they close; a feed ends when its last tab left.

import { readFeed } from './lib/sse.js';

const feeds = new Map(); // token -> {ports: Set, ctrl: AbortController}

function post(feed, msg) {
  for (const p of feed.ports) p.postMessage(msg);
}

async function run(token, feed) {
  let pause = 500;
  while (feed.ports.size) {
    const began = Date.now();
    try {
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      await readFeed(headers, feed.ctrl.signal, () => post(feed, { status: 'feed: live' }),
        (frame) => post(feed, { frame }));
    } catch (e) {
      if (!feed.ports.size) return;
      post(feed, { status: String(e.message || e) });
    }
    if (Date.now() - began > 10000) pause = 500;
    post(feed, { status: 'feed: reconnecting' });
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 10000);
  }
}

self.onconnect = (e) => {
  const port = e.ports[0];
  let joined = null;
  port.onmessage = ({ data }) => {
    if (data.bye) {
      if (!joined) return;
      joined.ports.delete(port);
      if (!joined.ports.size) { joined.ctrl.abort(); feeds.delete(joined.token); }
      joined = null;
      return;
    }
    const token = data.token || '';
    let feed = feeds.get(token);
    if (!feed) {
      feed = { token, ports: new Set(), ctrl: new AbortController() };
      feeds.set(token, feed);
      feed.ports.add(port);
      run(token, feed);
    } else {
      feed.ports.add(port);
      port.postMessage({ status: 'feed: live' });
    }
    joined = feed;
  };
};
