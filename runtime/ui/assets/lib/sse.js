// Reads the node's live feed (GET /api/v1/events?<query>, Server-Sent
// Events) until it ends: `onOpen()` once connected, `onFrame(text)` per
// frame. Used by lib/feed_conn.js.

export async function readFeed(headers, signal, query, onOpen, onFrame) {
  const url = query ? `/api/v1/events?${query}` : '/api/v1/events';
  const res = await fetch(url, { headers, cache: 'no-store', signal });
  if (!res.ok) throw new Error(`feed: HTTP ${res.status}`);
  onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      onFrame(buf.slice(0, at));
      buf = buf.slice(at + 2);
    }
  }
}
