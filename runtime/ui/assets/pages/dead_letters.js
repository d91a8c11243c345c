// Dead letters, grouped by pipeline, stage and error code, each group
// replayable from the failed stage or from the start. New dead letters
// arrive from the live feed (`job.dead_lettered`) and the list reloads.

import { h, replace, link, jobHref, time, errorCode, confirmDialog } from '../lib/dom.js';
import { api, query, steer, jobPath } from '../lib/api.js';
import { onEvent } from '../lib/feed.js';
import { notify, report } from '../lib/notice.js';

function groups(letters) {
  const out = new Map();
  for (const d of letters) {
    const key = `${d.pipeline}\u0000${d.stage}\u0000${errorCode(d.last_error)}`;
    if (!out.has(key)) out.set(key, { pipeline: d.pipeline, stage: d.stage, code: errorCode(d.last_error), letters: [] });
    out.get(key).letters.push(d);
  }
  return [...out.values()].sort((a, b) => b.letters.length - a.letters.length);
}

async function replayAll(g, fromStart, reload) {
  const n = g.letters.length;
  const how = fromStart ? 'from the start' : 'from the failed stage';
  if (!(await confirmDialog(`Replay ${n} dead letters of ${g.pipeline} / ${g.stage} (${g.code}) ${how}?`, `Replay ${n}`))) return;
  let ok = 0;
  const refused = [];
  for (const d of g.letters) {
    try { await steer(`${jobPath(d.job_id)}/replay`, fromStart ? { from_stage: 0 } : {}); ok++; } catch (e) { refused.push(`${d.job_id}: ${e.status} ${e.code}: ${e.message}`); }
  }
  if (refused.length) notify(`Replayed ${ok}, refused ${refused.length}: ${refused.slice(0, 3).join('; ')}`, 'error');
  else notify(`Replayed ${ok} ${how}.`);
  reload();
}

function groupView(g, reload) {
  const latest = Math.max(...g.letters.map((d) => d.dead_at_ms));
  return h('section', { class: 'group', dataset: { pipeline: g.pipeline, stage: g.stage, code: g.code } },
    h('h2', {}, `${g.pipeline} › ${g.stage} › `, h('code', {}, g.code || 'no code'),
      h('span', { class: 'count' }, ` ${g.letters.length}`)),
    h('p', { class: 'muted' }, `latest ${time(latest)} — e.g. “${g.letters[0].last_error}”`),
    h('div', { class: 'row' },
      h('button', { onclick: () => replayAll(g, false, reload) }, 'Replay from the failed stage'),
      h('button', { onclick: () => replayAll(g, true, reload) }, 'Replay from the start')),
    h('details', { open: g.letters.length <= 10 }, h('summary', {}, `${g.letters.length} jobs`),
      h('ul', { class: 'letters' }, g.letters.map((d) => h('li', { dataset: { job: d.job_id } },
        link(jobHref(d.job_id), d.job_id), ` — ${time(d.dead_at_ms)}, ${d.attempts} attempts, life ${d.life}`,
        d.replay_count ? `, replayed ${d.replay_count}×` : '')))));
}

export function render(root, ctx) {
  const pipeline = ctx.params.get('pipeline') || '';
  const list = h('div', { id: 'dead-letters' }, h('p', {}, 'Loading…'));
  replace(root, h('h1', {}, 'Dead letters', pipeline ? ` of ${pipeline}` : ''),
    pipeline ? h('p', {}, link('/ui/dead-letters', 'all pipelines')) : '', list);
  async function load() {
    try {
      const letters = await api(`dead-letters${query({ pipeline, limit: 1000 })}`);
      replace(list, letters.length ? groups(letters).map((g) => groupView(g, load)) : h('p', {}, 'No dead letters.'));
    } catch (e) { report(e, 'dead letters'); }
  }
  load();
  let pending = null;
  const off = onEvent((e) => {
    if (e.type !== 'job.dead_lettered' || (pipeline && e.pipeline !== pipeline)) return;
    // The event follows the commit; a burst of them reloads once.
    if (!pending) pending = setTimeout(() => { pending = null; load(); }, 100);
  }, { types: ['job.dead_lettered'] });
  return () => { off(); clearTimeout(pending); };
}
