// The capacity check of docs/benchmarks.md ("Capacity model"): the same
// offered load (RATE jobs/s of a 3-stage noop pipeline, published straight
// into JetStream for SECONDS s) run by 1, 2 and 3 nodes on this machine,
// with the CPU each process group spent per job: the nodes, PostgreSQL's
// process tree and nats-server, from /proc. On 2 cores more nodes cannot
// add capacity; what the run shows is how CPU per job grows as nodes split
// the same load (it is not flat: each node commits its own batches, and a
// commit has a fixed cost).
//
//   node bench/capacity.mjs [rate=3000] [seconds=20]   (ORDER=3,2,1: other order)
// One JSON line per round, then the fit of CPU per job against commits per
// job over the rounds (the capacity model's per-job and per-commit costs).
//
// Starts its own servers with `troupe dev --servers-only` on the fixed
// ports 4222 and 55432 (as bench/failover.sh): run it where nothing else
// uses them. The JetStream client is examples/publishers/js's (`npm ci`).

import { createRequire } from 'node:module';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';

const natsjs = createRequire(new URL('../examples/publishers/js/package.json', import.meta.url))('nats');
const TROUPE = process.env.TROUPE || new URL('../build/troupe', import.meta.url).pathname;
const PSQL = process.env.PSQL || '/usr/lib/postgresql/15/bin/psql';
const PG = 'postgresql://postgres@127.0.0.1:55432/troupe';
const RATE = Number(process.argv[2] || 3000);
const SECONDS = Number(process.argv[3] || 20);
const DIR = mkdtempSync('/tmp/troupe-capacity.');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = [];

function start(args, log) {
  const out = { text: '' };
  const child = spawn(TROUPE, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const s of [child.stdout, child.stderr]) s.on('data', (d) => { out.text += d; });
  child.out = out;
  child.log = log;
  children.push(child);
  return child;
}

async function until(what, fn, ms = 90000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(100);
  }
}

/// CPU seconds of a process (utime + stime), with its reaped children's.
function cpu(pid, withChildren = false) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const own = Number(f[11]) + Number(f[12]);
    return (withChildren ? own + Number(f[13]) + Number(f[14]) : own) / 100;
  } catch { return 0; }
}

/// A process and its live descendants, plus what its reaped children spent
/// (PostgreSQL's backends come and go).
function treeCpu(root) {
  let total = cpu(root, true);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      if (ppid === root) total += cpu(pid, true);
    } catch { /* gone */ }
  }
  return total;
}

function pidOf(pattern) {
  return Number(execFileSync('pgrep', ['-o', '-f', pattern]).toString().trim());
}

const commits = () => Number(execFileSync(PSQL, ['-qtAX', PG, '-c',
  "select xact_commit from pg_stat_database where datname = 'troupe'"]).toString().trim());

const succeeded = () => Number(execFileSync(PSQL, ['-qtAX', PG, '-c',
  "select count(*) from jobs where pipeline = 'cap' and state = 'succeeded'"]).toString().trim());

async function publish(label) {
  const nc = await natsjs.connect({ servers: 'nats://127.0.0.1:4222' });
  const js = nc.jetstream();
  const body = new TextEncoder().encode('{"payload":{}}');
  const total = RATE * SECONDS;
  const perSlice = Math.max(1, Math.round(RATE / 100));
  const t0 = Date.now();
  for (let sent = 0; sent < total;) {
    const acks = [];
    for (let i = 0; i < perSlice && sent < total; i++, sent++)
      acks.push(js.publish('troupe.jobs.cap', body, { msgID: `${label}-${sent}` }));
    await Promise.all(acks);
    const due = t0 + (sent / RATE) * 1000;
    if (due > Date.now()) await sleep(due - Date.now());
  }
  await nc.drain();
  return total;
}

async function round(n, pg, nats) {
  const nodes = [];
  for (let i = 1; i <= n; i++) {
    const node = start(['node', '--config', `${DIR}/node.toml`, '--node-id', `cap${n}-${i}`]);
    await until(`node cap${n}-${i} ready`, () => node.out.text.includes(': ready'));
    nodes.push(node);
  }
  await sleep(2000); // start-up settles
  const before = succeeded();
  const x0 = commits();
  const c0 = { nodes: nodes.reduce((s, x) => s + cpu(x.pid), 0), pg: treeCpu(pg), nats: cpu(nats) };
  const t0 = Date.now();
  const total = await publish(`n${n}-${t0}`);
  const published = (Date.now() - t0) / 1000;
  while (succeeded() < before + total) await sleep(250);
  const secs = (Date.now() - t0) / 1000;
  const per = (x) => Math.round((x * 1e6) / total);
  const row = {
    nodes: n, offered_per_s: RATE, jobs: total, publish_s: +published.toFixed(1), done_s: +secs.toFixed(1),
    node_cpu_us_per_job: per(nodes.reduce((s, x) => s + cpu(x.pid), 0) - c0.nodes),
    pg_cpu_us_per_job: per(treeCpu(pg) - c0.pg),
    nats_cpu_us_per_job: per(cpu(nats) - c0.nats),
    // Statistics reach pg_stat_database within ~0.5 s: read after a pause.
    pg_commits_per_job: 0,
  };
  await sleep(1000);
  row.pg_commits_per_job = +((commits() - x0) / total).toFixed(3);
  const counts = execFileSync(PSQL, ['-qtAX', PG, '-c',
    `select count(*) from job_attempts a join jobs j using (job_id) where j.pipeline = 'cap' and j.created_at >= to_timestamp(${t0 / 1000}) group by a.node order by 1 desc`]).toString().trim();
  row.attempts_per_node = counts.split('\n').map(Number);
  for (const x of nodes) x.kill('SIGTERM');
  await Promise.all(nodes.map((x) => new Promise((r) => (x.exitCode !== null ? r() : x.on('exit', r)))));
  return row;
}

/// The capacity model's two costs, fitted over the rounds (least squares):
/// CPU per job = a + b × commits per job, for PostgreSQL and the nodes
/// (docs/benchmarks.md, "Capacity model"). Needs rounds whose commits per
/// job differ, i.e. different node counts.
function costFit(rows) {
  const line = (ys) => {
    const xs = rows.map((r) => r.pg_commits_per_job);
    const n = xs.length;
    const mx = xs.reduce((s, x) => s + x, 0) / n;
    const my = ys.reduce((s, y) => s + y, 0) / n;
    const sxx = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
    if (n < 2 || sxx < 1e-6) return null;
    const b = xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0) / sxx;
    return { us_per_job: Math.round(my - b * mx), us_per_commit: Math.round(b) };
  };
  const pg = line(rows.map((r) => r.pg_cpu_us_per_job));
  const node = line(rows.map((r) => r.node_cpu_us_per_job));
  return pg && node ? { postgres: pg, nodes: node } : null;
}

try {
  const servers = start(['dev', '--servers-only', '--dir', DIR]);
  await until('servers', () => servers.out.text.includes('servers only'));
  writeFileSync(`${DIR}/node.toml`, `[node]
http = "127.0.0.1:0"
[nats]
url = "nats://127.0.0.1:4222"
[postgres]
url = "${PG}"
[pipelines.cap]
stages = [ { name = "a", kind = "noop" }, { name = "b", kind = "noop" }, { name = "c", kind = "noop" } ]
`);
  const pg = pidOf(`postgres -D ${DIR}`);
  const nats = pidOf(`nats-server.*${DIR}`);
  console.log(`# ${RATE} jobs/s offered for ${SECONDS} s; ${DIR}`);
  const rows = [];
  for (const n of (process.env.ORDER || '1,2,3').split(',').map(Number)) {
    rows.push(await round(n, pg, nats));
    console.log(JSON.stringify(rows[rows.length - 1]));
  }
  const fit = costFit(rows);
  if (fit) console.log(JSON.stringify({ fit }));
} finally {
  for (const c of children.reverse()) if (c.exitCode === null) c.kill('SIGINT');
  await sleep(3000);
}
