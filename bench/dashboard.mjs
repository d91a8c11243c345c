// The dashboard's costs (docs/benchmarks.md, "Dashboard"): time to first
// render of the overview and of a job page with 100 attempts, in Debian's
// Chromium; and the node's CPU per job with 0 and with 10 dashboards open
// while a batch of jobs (queued while the pipeline is paused) runs.
//
//   troupe dev --config bench/dashboard.toml &      (node on 127.0.0.1:9464)
//   node bench/dashboard.mjs [jobs=50000]     (BATCH=0: render times only;
//   PIPELINE=fast: the default speculation window; READERS=overview|all:
//   10 plain feed readers instead of 10 browsers)
// playwright-core comes from tests/ui/node_modules (`npm ci` there).

import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const require = createRequire(new URL('../tests/ui/package.json', import.meta.url));
const { chromium } = require('playwright-core');
// The JetStream client of examples/publishers/js (`npm ci` there).
const natsjs = createRequire(new URL('../examples/publishers/js/package.json', import.meta.url))('nats');
const RATE = Number(process.env.RATE || 20000);
const BASE = process.env.UI || 'http://127.0.0.1:9464';
const TROUPE = process.env.TROUPE || new URL('../build/troupe', import.meta.url).pathname;
const JOBS = Number(process.argv[2] || 50000);
// `bench` (speculate = 0) or `fast` (the default window), bench/dashboard.toml.
const PIPELINE = process.env.PIPELINE || 'bench';
const RUNS = 20;

// httplib closes a kept-alive connection after 5 requests: one retry.
const api = async (p) => {
  try { return await (await fetch(`${BASE}/api/v1/${p}`)).json(); } catch { return (await fetch(`${BASE}/api/v1/${p}`)).json(); }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const submit = (pipeline, key, count) => execFileSync(TROUPE, ['submit', pipeline, '--key', key, '--count', String(count), '--payload', '{}'], { stdio: 'pipe', maxBuffer: 1 << 26 });

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], p95: s[Math.floor(s.length * 0.95)], min: s[0] };
}

/// Milliseconds from navigation start until `ready` first holds, taken in
/// the page by a MutationObserver (a poll from outside would add its own
/// round trips). A fresh context each time: nothing cached.
async function renderTimes(browser, path, ready) {
  const out = [];
  for (let i = 0; i < RUNS; i++) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // `ready`: [selector, at least n matches] pairs (no eval: the page's
    // policy forbids it).
    await ctx.addInitScript((conds) => {
      const check = () => conds.every(([sel, n]) => document.querySelectorAll(sel).length >= n);
      new MutationObserver((_, obs) => {
        if (window.readyAt === undefined && check()) { window.readyAt = performance.now(); obs.disconnect(); }
      }).observe(document, { childList: true, subtree: true });
    }, ready);
    const page = await ctx.newPage();
    await page.goto(`${BASE}${path}`);
    await page.waitForFunction(() => window.readyAt !== undefined);
    out.push(await page.evaluate(() => window.readyAt));
    await ctx.close();
  }
  return stats(out);
}

function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in ticks of 10 ms
}

/// JOBS jobs straight into JetStream at RATE per second (as a service
/// publishing with its own keys would), in 10 ms slices.
async function publishAtRate(prefix) {
  const nc = await natsjs.connect({ servers: process.env.NATS || 'nats://127.0.0.1:4222' });
  const js = nc.jetstream();
  const body = new TextEncoder().encode('{"payload":{}}');
  const perSlice = Math.max(1, Math.round(RATE / 100));
  const t0 = Date.now();
  for (let sent = 0; sent < JOBS;) {
    const acks = [];
    for (let i = 0; i < perSlice && sent < JOBS; i++, sent++)
      acks.push(js.publish(`troupe.jobs.${PIPELINE}`, body, { msgID: `${prefix}-${sent}` }));
    await Promise.all(acks);
    const due = t0 + (sent / RATE) * 1000;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  await nc.drain();
}

/// This node's own count (in memory; the store's counts would load
/// PostgreSQL while it is measured).
async function succeeded(pipeline) {
  const s = (await api('stats')).find((p) => p.pipeline === pipeline);
  return s ? s.succeeded : 0;
}

async function batch(label) {
  const pid = (await api('nodes'))[0].pid;
  const before = await succeeded(PIPELINE);
  // Queued while the pipeline is paused, then run as fast as the node
  // goes (as scripts/bench.sh measures throughput).
  await fetch(`${BASE}/api/v1/pipelines/${PIPELINE}/pause`, { method: 'POST' });
  const p0 = Date.now();
  await publishAtRate(`${label}-${p0}`);
  const submitted = (Date.now() - p0) / 1000;
  const cpu0 = cpuSeconds(pid);
  const t0 = Date.now();
  await fetch(`${BASE}/api/v1/pipelines/${PIPELINE}/unpause`, { method: 'POST' });
  while ((await succeeded(PIPELINE)) < before + JOBS) await sleep(250);
  const secs = (Date.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  return { label, pipeline: PIPELINE, jobs: JOBS, submit_s: submitted.toFixed(1), seconds: secs.toFixed(1), jobs_per_s: Math.round(JOBS / secs), node_cpu_s: cpu.toFixed(2), node_cpu_us_per_job: Math.round((cpu * 1e6) / JOBS) };
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
submit('hundred', `hundred-${Date.now()}`, 1);
let id = '';
while (!id) {
  const page = await api('jobs?pipeline=hundred&state=succeeded&limit=1');
  id = page.jobs.length ? page.jobs[0].job_id : '';
  await sleep(200);
}
const overview = await renderTimes(browser, '/ui/', [['#nodes tbody tr', 1], ['#pipelines tbody tr', 1]]);
const job = await renderTimes(browser, `/ui/jobs/${encodeURIComponent(id)}`, [['#attempts tbody tr', 100]]);
console.log(JSON.stringify({ first_render_ms: { overview, job_100_attempts: job } }));
if (process.env.BATCH === '0') { await browser.close(); process.exit(0); }
console.log(JSON.stringify(await batch('no-dashboard')));
if (process.env.READERS) {
  // The feeds alone, without the browsers' CPU on the same 2 cores (which
  // slows the node, and a slower job falls out of the speculation window):
  // 10 readers of the overview's feed (READERS=overview) or of every event
  // (READERS=all, what each page got before pages asked for what they draw).
  const query = process.env.READERS === 'all' ? '' : '?types=job.succeeded,job.dead_lettered,job.cancelled';
  for (let i = 0; i < 10; i++) {
    const res = await fetch(`${BASE}/api/v1/events${query}`);
    (async () => { for await (const _ of res.body); })();
  }
  await sleep(1000);
  console.log(JSON.stringify(await batch(`ten-feeds-${process.env.READERS}`)));
  process.exit(0);
}
// Ten operators: ten browser profiles, each with its own feed and polls.
for (let i = 0; i < 10; i++) {
  const ctx = await browser.newContext();
  await (await ctx.newPage()).goto(`${BASE}/ui/`);
}
await sleep(2000);
{
  // Their polls alone, with no job running: node CPU per second.
  const pid = (await api('nodes'))[0].pid;
  const cpu0 = cpuSeconds(pid);
  await sleep(10000);
  console.log(JSON.stringify({ label: 'ten-dashboards-idle', node_cpu_ms_per_s: Math.round((cpuSeconds(pid) - cpu0) * 100) }));
}
console.log(JSON.stringify(await batch('ten-dashboards')));
await browser.close();
