// Overview: the nodes, the pipelines and two charts drawn from the live
// feed (jobs finished per second; job latency p50/p99 per second).

import { h, replace, table, link, duration, badge } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { onEvent } from '../lib/feed.js';
import { lineChart } from '../lib/chart.js';
import { report } from '../lib/notice.js';

const WINDOW = 300; // seconds kept for the charts
const TERMINAL = new Set(['job.succeeded', 'job.dead_lettered', 'job.cancelled']);

// Kept across visits of the page, so the charts do not start empty.
const buckets = new Map(); // second -> {done, failed, latencies[]}

function bucket(sec) {
  let b = buckets.get(sec);
  if (!b) { b = { done: 0, failed: 0, latencies: [] }; buckets.set(sec, b); }
  for (const k of buckets.keys()) if (k < sec - WINDOW) buckets.delete(k);
  return b;
}

function record(ev) {
  if (!TERMINAL.has(ev.type)) return;
  const b = bucket(Math.floor((ev.time_ms || Date.now()) / 1000));
  if (ev.type === 'job.succeeded') {
    b.done++;
    if (typeof ev.latency_ms === 'number') b.latencies.push(ev.latency_ms);
  } else b.failed++;
}
onEvent(record, { types: [...TERMINAL] });

function quantile(xs, q) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

function charts() {
  const now = Math.floor(Date.now() / 1000) - 1;
  const secs = Array.from({ length: WINDOW }, (_, i) => now - WINDOW + 1 + i);
  const get = (s) => buckets.get(s);
  return h('div', { class: 'charts' },
    lineChart('Jobs finished', 'jobs/s', [
      { name: 'succeeded', cls: 'ok', values: secs.map((s) => (get(s) ? get(s).done : 0)) },
      { name: 'dead-lettered or cancelled', cls: 'bad', values: secs.map((s) => (get(s) ? get(s).failed : 0)) },
    ], WINDOW),
    lineChart('Job latency', 'ms', [
      { name: 'p50', cls: 'ok', values: secs.map((s) => (get(s) ? quantile(get(s).latencies, 0.5) : null)) },
      { name: 'p99', cls: 'warn', values: secs.map((s) => (get(s) ? quantile(get(s).latencies, 0.99) : null)) },
    ], WINDOW));
}

function nodesTable(nodes) {
  const now = Date.now();
  return table(['Node', 'State', 'Health', 'Load', 'Version', 'Uptime', 'Host', 'Pipelines'],
    nodes.map((n) => h('tr', { dataset: { node: n.node_id } },
      h('th', { scope: 'row' }, n.node_id),
      h('td', {}, badge(n.state)),
      h('td', {}, n.health || '–'),
      h('td', {}, meter(n.in_flight, n.capacity)),
      h('td', {}, n.version || '–'),
      h('td', {}, n.started_at_ms ? duration(now - n.started_at_ms) : '–'),
      h('td', {}, n.host ? `${n.host} (pid ${n.pid})` : '–'),
      h('td', {}, (n.pipelines || []).join(', ')))), { id: 'nodes' });
}

function meter(value, max) {
  return h('span', { class: 'load' },
    h('meter', { min: 0, max: max || 1, value: value || 0, 'aria-label': 'jobs in flight' }),
    ` ${value || 0} / ${max || '–'}`);
}

/// Pipelines with jobs (the store's counts) and those the nodes run but
/// that have none yet.
export function pipelineNames(counts, nodes) {
  const names = new Set(Object.keys(counts));
  for (const node of nodes) for (const p of node.pipelines || []) names.add(p);
  return [...names].sort();
}

function pipelinesTable(counts, nodes) {
  const n = (o, k) => (o && o[k]) || 0;
  const names = pipelineNames(counts, nodes);
  return table(['Pipeline', 'Rate', 'Backlog', 'Running', 'Retrying', 'Scheduled', 'Waiting', 'Succeeded', 'Dead letters', ''],
    names.map((name) => {
      const p = counts[name] || {};
      const st = p.states || {};
      const lm = p.last_minute || {};
      return h('tr', { dataset: { pipeline: name } },
        h('th', { scope: 'row' }, link(`/ui/jobs?pipeline=${encodeURIComponent(name)}`, name)),
        h('td', {}, `${(n(lm, 'succeeded') / 60).toFixed(1)}/s`),
        h('td', {}, n(st, 'queued')),
        h('td', {}, n(st, 'running')),
        h('td', {}, n(st, 'retrying')),
        h('td', {}, n(st, 'scheduled')),
        h('td', {}, n(st, 'waiting')),
        h('td', {}, n(st, 'succeeded')),
        h('td', {}, link(`/ui/dead-letters?pipeline=${encodeURIComponent(name)}`, String(p.dead_letters || 0))),
        h('td', {}, p.paused ? badge('paused') : ''));
    }), { id: 'pipelines' });
}

export function render(root) {
  const nodes = h('section', { 'aria-labelledby': 'h-nodes' }, h('h2', { id: 'h-nodes' }, 'Nodes'), h('p', {}, 'Loading…'));
  const pipes = h('section', { 'aria-labelledby': 'h-pipes' }, h('h2', { id: 'h-pipes' }, 'Pipelines'), h('p', {}, 'Loading…'));
  const live = h('section', { 'aria-labelledby': 'h-live' }, h('h2', { id: 'h-live' }, 'Live (this tab, last 5 minutes)'), charts());
  replace(root, h('h1', {}, 'Overview'), nodes, pipes, live);
  let stopped = false;
  let ticks = 0;
  async function refresh() {
    try {
      // The counts scan the jobs table: every 5 s is enough (both asked at once).
      const counts = ticks++ % 5 === 0 ? api('pipelines') : null;
      if (counts) counts.catch(() => {}); // reported below if awaited
      const members = await api('nodes');
      replace(nodes, nodes.firstChild, nodesTable(members));
      if (counts) replace(pipes, pipes.firstChild, pipelinesTable(await counts, members));
    } catch (e) { report(e, 'overview'); }
  }
  refresh();
  const timer = setInterval(() => {
    if (stopped) return;
    refresh();
    replace(live, live.firstChild, charts());
  }, 1000);
  return () => { stopped = true; clearInterval(timer); };
}
