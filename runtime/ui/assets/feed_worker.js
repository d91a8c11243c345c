// One live feed per browser (a SharedWorker): every tab of the dashboard
// on this node shares it. Each tab holding its own Server-Sent Events
// connection would use one of the browser's six HTTP/1.1 connections per
// host, and the seventh tab would hang. Tabs send {token, filter} to join,
// {filter} when their pages change what they draw, and {bye: true} when
// they close; the feed asks the node for what all its tabs want, and ends
// when its last tab left.

import { feedConnection, queryOf, wants } from './lib/feed_conn.js';

const feeds = new Map(); // token -> {ports: Map(port -> filter), conn}

function post(feed, msg) {
  for (const p of feed.ports.keys()) p.postMessage(msg);
}

function refilter(feed) {
  feed.conn.set(queryOf(wants(feed.ports.values())));
}

function join(port, token, filter) {
  let feed = feeds.get(token);
  if (!feed) {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    feed = { token, ports: new Map() };
    feed.conn = feedConnection(headers, (status) => post(feed, { status }),
      (frame) => post(feed, { frame }));
    feeds.set(token, feed);
  } else {
    port.postMessage({ status: 'feed: live' });
  }
  feed.ports.set(port, filter);
  refilter(feed);
  return feed;
}

function leave(port, feed) {
  feed.ports.delete(port);
  if (feed.ports.size) { refilter(feed); return; }
  feed.conn.close();
  feeds.delete(feed.token);
}

self.onconnect = (e) => {
  const port = e.ports[0];
  let joined = null;
  port.onmessage = ({ data }) => {
    if (data.bye) {
      if (joined) leave(port, joined);
      joined = null;
    } else if (joined && 'filter' in data && !('token' in data)) {
      joined.ports.set(port, data.filter);
      refilter(joined);
    } else {
      if (joined) leave(port, joined);
      joined = join(port, data.token || '', data.filter === undefined ? null : data.filter);
    }
  };
};
