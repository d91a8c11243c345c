// The live supervision tree of the whole cluster: node → pipeline
// supervisor → job actor → stage actor. Gathered over NATS from every node
// (GET /api/v1/cluster/tree); redrawn every second and soon after any
// stage or job event.

import { h, replace, link, jobHref, duration, badge } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { onEvent } from '../lib/feed.js';
import { report } from '../lib/notice.js';

// The events after which the tree has changed: a job or stage actor began
// or ended (progress reports change nothing in it).
const CHANGES = ['job.started', 'stage.started', 'stage.succeeded', 'stage.failed', 'job.retrying',
  'job.succeeded', 'job.dead_lettered', 'job.cancelled', 'job.spawned', 'job.waiting'];

function stageItems(j) {
  const branches = j.branches || (j.stage_actor ? [{ stage: j.stage, stage_index: j.stage_index, attempt: j.attempt, state: j.state, stage_actor: j.stage_actor, for_ms: j.for_ms }] : []);
  return branches.filter((b) => b.stage_actor).map((b) =>
    h('li', { class: 'stage', dataset: { stageActor: b.stage_actor }, role: 'treeitem' },
      `stage actor #${b.stage_actor} — ${b.stage} attempt ${b.attempt}, ${duration(b.for_ms)}`));
}

function jobItem(j) {
  const stages = stageItems(j);
  return h('li', { class: 'job', dataset: { job: j.job_id }, role: 'treeitem' },
    `job actor #${j.actor} `, link(jobHref(j.job_id), j.job_id), ' ', badge(j.state),
    ` ${j.stage || ''} #${j.stage_index} attempt ${j.attempt}, life ${j.life}`,
    j.restarts ? `, ${j.restarts} restarts` : '',
    stages.length ? h('ul', { role: 'group' }, stages) : '');
}

function nodeItem(t) {
  return h('li', { class: 'node', dataset: { node: t.node }, role: 'treeitem', 'aria-expanded': 'true' },
    h('strong', {}, `node ${t.node}`),
    h('ul', { role: 'group' }, (t.pipelines || []).map((p) =>
      h('li', { class: 'supervisor', dataset: { pipeline: p.pipeline }, role: 'treeitem' },
        `pipeline supervisor #${p.actor} ${p.pipeline} `, p.paused ? badge('paused') : '',
        h('span', { class: 'muted' }, ` ${p.jobs.length} job actors${p.truncated ? ' (first ones shown)' : ''}`),
        p.jobs.length ? h('ul', { role: 'group' }, p.jobs.map(jobItem)) : ''))));
}

export function render(root) {
  const out = h('div', { id: 'tree' }, h('p', {}, 'Loading…'));
  replace(root, h('h1', {}, 'Cluster tree'), out);
  let busy = false;
  async function load() {
    if (busy) return;
    busy = true;
    try {
      const trees = await api('cluster/tree?limit=200');
      replace(out, h('ul', { role: 'tree', 'aria-label': 'Supervision tree' }, trees.map(nodeItem)));
    } catch (e) { report(e, 'tree'); } finally { busy = false; }
  }
  load();
  const timer = setInterval(load, 1000);
  let pending = null;
  const off = onEvent(() => {
    if (!pending) pending = setTimeout(() => { pending = null; load(); }, 150);
  }, { types: CHANGES });
  return () => { clearInterval(timer); clearTimeout(pending); off(); };
}
