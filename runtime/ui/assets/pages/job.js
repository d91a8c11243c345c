// One job: its state, every stage with its attempts on a timeline (per
// life, so a replayed job shows both), payload and outputs (large values
// folded), progress, and its events, with live ones appended as they come.

import { h, replace, link, jobHref, time, duration, badge, table, confirmDialog } from '../lib/dom.js';
import { api, steer, jobPath } from '../lib/api.js';
import { onEvent } from '../lib/feed.js';
import { notify, report } from '../lib/notice.js';

const FOLD = 2048; // bytes of JSON above which a value starts folded

function value(title, v) {
  if (v === null || v === undefined) return '';
  const text = JSON.stringify(v, null, 2);
  return h('details', { class: 'value', open: text.length <= FOLD },
    h('summary', {}, `${title} (${text.length.toLocaleString()} bytes)`), h('pre', {}, text));
}

function facts(j) {
  const dl = h('dl', { class: 'facts' });
  const add = (k, v) => { if (v !== '' && v !== null && v !== undefined) dl.append(h('dt', {}, k), h('dd', {}, v)); };
  add('State', badge(j.state));
  add('Pipeline', link(`/ui/jobs?pipeline=${encodeURIComponent(j.pipeline)}`, j.pipeline));
  add('Tenant', j.tenant);
  add('Life', j.life);
  add('Stage / attempt', `${j.stage_index} / ${j.attempt}`);
  add('Created', time(j.created_at_ms));
  add('Started', time(j.started_at_ms));
  add('Finished', j.finished_at_ms ? time(j.finished_at_ms) : '');
  add('Correlation id', j.correlation_id);
  add('Parent', j.parent_id ? link(jobHref(j.parent_id), j.parent_id) : '');
  add('Lease', j.state === 'running' && j.lease_owner ? `${j.lease_owner} until ${time(j.lease_until_ms)}` : '');
  add('Next attempt', j.next_attempt_at_ms ? time(j.next_attempt_at_ms) : '');
  add('Last error', j.last_error ? h('span', { class: 'err' }, j.last_error) : '');
  if (j.progress && typeof j.progress === 'object') {
    const p = j.progress.progress;
    add('Progress', h('span', {}, typeof p === 'number' ? h('progress', { max: 1, value: p }) : '', ' ', j.progress.message || ''));
  }
  return dl;
}

/// Attempts of every stage as bars on one time axis per life.
function timeline(stages) {
  const lives = new Map();
  for (const s of stages) for (const a of s.attempts || []) {
    if (!lives.has(a.life)) lives.set(a.life, []);
    lives.get(a.life).push({ ...a, stage: s.name, index: s.index });
  }
  if (!lives.size) return h('p', { class: 'muted' }, 'No attempt yet.');
  return [...lives.entries()].sort((a, b) => a[0] - b[0]).map(([life, attempts]) => {
    const t0 = Math.min(...attempts.map((a) => a.started_at_ms));
    const t1 = Math.max(...attempts.map((a) => a.started_at_ms + (a.duration_ms || 0)));
    const span = Math.max(1, t1 - t0);
    const rows = stages.map((s) => {
      const mine = attempts.filter((a) => a.index === s.index);
      return h('li', { class: 'lane' },
        h('span', { class: 'lane-name' }, `${s.index}. ${s.name}`),
        h('span', { class: 'track' }, mine.map((a) => bar(a, t0, span))));
    });
    return h('section', { class: 'life', dataset: { life } },
      h('h3', {}, `Life ${life}`, h('span', { class: 'muted' }, ` — ${time(t0)}, ${duration(t1 - t0)}`)),
      h('ol', { class: 'timeline' }, rows));
  });
}

function bar(a, t0, span) {
  const b = h('span', {
    class: `bar ${a.ok ? 'ok' : 'bad'}`, tabindex: 0,
    title: `attempt ${a.attempt} on ${a.node}, ${duration(a.duration_ms)}${a.error ? `: ${a.error.code}: ${a.error.message}` : ''}`,
  });
  b.style.left = `${(100 * (a.started_at_ms - t0)) / span}%`;
  b.style.width = `max(3px, ${(100 * (a.duration_ms || 0)) / span}%)`;
  return b;
}

function attemptsTable(stages) {
  const rows = [];
  for (const s of stages) for (const a of s.attempts || []) {
    rows.push(h('tr', { class: a.ok ? '' : 'failed' },
      h('td', {}, a.life), h('td', {}, s.name), h('td', {}, a.attempt), h('td', {}, time(a.started_at_ms)),
      h('td', {}, duration(a.duration_ms)), h('td', {}, a.node || '–'),
      h('td', { class: a.error ? 'err' : '' }, a.error ? `${a.error.code}: ${a.error.message}` : a.ok ? 'ok' : '')));
  }
  return table(['Life', 'Stage', 'Attempt', 'Started', 'Duration', 'Node', 'Outcome'], rows, { id: 'attempts' });
}

function eventRow(e) {
  return h('li', {}, h('time', {}, time(e.time_ms)), ' ', h('code', {}, e.type),
    e.stage ? ` ${e.stage}` : '', e.attempt ? ` attempt ${e.attempt}` : '', e.node ? ` on ${e.node}` : '',
    e.error ? h('span', { class: 'err' }, ` ${e.error.code}: ${e.error.message}`) : '');
}

function actions(id, doc, reload) {
  const j = doc.job;
  const stageSel = h('select', { 'aria-label': 'from stage' },
    doc.stages.map((s) => h('option', { value: s.index, selected: s.index === j.stage_index }, `${s.index}. ${s.name}`)));
  const act = async (verb, body, question) => {
    if (question && !(await confirmDialog(question, verb))) return;
    try { await steer(`${jobPath(id)}/${verb.toLowerCase()}`, body); notify(`${verb}: done.`); reload(); } catch (e) { report(e, verb); }
  };
  return h('div', { class: 'row actions' },
    h('button', { class: 'danger', onclick: () => act('Cancel', {}, `Cancel job ${id}?`) }, 'Cancel'),
    h('button', { onclick: () => act('Retry', { from_stage: Number(stageSel.value) }) }, 'Retry from'), stageSel,
    doc.dead_letter ? h('button', { onclick: () => act('Replay', {}) }, 'Replay from the failed stage') : '',
    h('button', { onclick: () => act('Replay', { from_stage: 0 }) }, 'Replay from the start'));
}

/// The job id of the URL (each segment encoded, jobHref); null if the URL
/// is not valid percent-encoding.
function idOf(raw) {
  try { return raw.split('/').map(decodeURIComponent).join('/'); } catch { return null; }
}

export function render(root, ctx) {
  const id = idOf(ctx.match[1]);
  if (id === null) {
    replace(root, h('h1', {}, 'Not a job id'), h('p', {}, 'The address is not valid percent-encoding.'));
    return null;
  }
  const body = h('div', {}, h('p', {}, 'Loading…'));
  const live = h('ol', { class: 'events live', 'aria-live': 'polite' });
  replace(root, h('h1', {}, 'Job ', h('code', {}, id)), body);
  let full = false;
  async function load() {
    try {
      const doc = await api(`${jobPath(id)}${full ? '?full=true' : ''}`);
      const stages = doc.stages || [];
      replace(body, actions(id, doc, load), facts(doc.job),
        doc.dead_letter ? h('p', { class: 'dead' }, `Dead-lettered at stage ${doc.dead_letter.stage}: ${doc.dead_letter.last_error} (replayed ${doc.dead_letter.replay_count}×)`) : '',
        h('h2', {}, 'Timeline'), timeline(stages), attemptsTable(stages),
        h('h2', {}, 'Values'), doc.truncated && !full ? h('button', { onclick: () => { full = true; load(); } }, 'Load the full values') : '',
        value('Payload', doc.job.payload), value('Result', doc.job.result),
        stages.filter((s) => s.checkpoint).map((s) => value(`Output of ${s.name}`, s.checkpoint.output)),
        h('h2', {}, 'Events'), h('ol', { class: 'events' }, (doc.events || []).map(eventRow)),
        h('h3', {}, 'Live'), live);
    } catch (e) {
      replace(body, h('p', { class: 'err' }, e.status === 404 ? `No job ${id}.` : String(e.message)));
      if (e.status !== 404) report(e, 'job');
    }
  }
  load();
  let pending = null;
  const off = onEvent((e) => {
    if (e.job_id !== id) return;
    live.append(eventRow(e));
    // The rows commit before the event is published: reload once it settles.
    clearTimeout(pending);
    pending = setTimeout(load, 200);
  }, { jobs: [id] });
  return () => { off(); clearTimeout(pending); };
}
