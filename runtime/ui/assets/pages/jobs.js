// Jobs: filters in the URL (so a filtered list can be linked), keyset
// pages (`after` = the previous page's `next`), and bulk steering of the
// whole filtered set after a confirmation that says how many.

import { h, replace, table, link, jobHref, time, badge, errorCode, confirmDialog } from '../lib/dom.js';
import { api, query, steer, jobPath } from '../lib/api.js';
import { notify, report } from '../lib/notice.js';
import { pipelineNames } from './overview.js';

const STATES = ['', 'scheduled', 'queued', 'running', 'retrying', 'waiting', 'succeeded', 'dead_lettered', 'cancelled'];
const SINCE = [['', 'any time'], ['900', 'last 15 minutes'], ['3600', 'last hour'], ['86400', 'last day'], ['604800', 'last week']];
const FILTERS = ['pipeline', 'state', 'tenant', 'since', 'error', 'q'];
const BULK_MAX = 10000;

function filterOf(params) {
  const f = {};
  for (const k of FILTERS) f[k] = params.get(k) || '';
  return f;
}

function apiFilter(f) {
  return {
    pipeline: f.pipeline, state: f.state, tenant: f.tenant, error: f.error, q: f.q,
    since_ms: f.since ? Date.now() - Number(f.since) * 1000 : '',
  };
}

function field(label, name, control) {
  control.name = name;
  control.id = `f-${name}`;
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control);
}

function select(options, value) {
  return h('select', {}, options.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
}

function form(f, pipelines, ctx) {
  const el = h('form', { class: 'filters', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    const data = new FormData(el);
    const q = {};
    for (const k of FILTERS) q[k] = (data.get(k) || '').trim();
    ctx.navigate(`/ui/jobs${query(q)}`);
  } },
  field('Pipeline', 'pipeline', select([['', 'all'], ...pipelines.map((p) => [p, p])], f.pipeline)),
  field('State', 'state', select(STATES.map((s) => [s, s ? s.replace('_', ' ') : 'all']), f.state)),
  field('Tenant', 'tenant', h('input', { value: f.tenant, placeholder: 'any' })),
  field('Created', 'since', select(SINCE, f.since)),
  field('Error code', 'error', h('input', { value: f.error, placeholder: 'e.g. timeout' })),
  field('Id or correlation id contains', 'q', h('input', { value: f.q, type: 'search' })),
  h('div', { class: 'field' }, h('button', { type: 'submit' }, 'Filter')));
  return el;
}

function row(j) {
  return h('tr', { dataset: { job: j.job_id } },
    h('th', { scope: 'row' }, link(jobHref(j.job_id), j.job_id)),
    h('td', {}, j.pipeline),
    h('td', {}, badge(j.state)),
    h('td', {}, `${j.stage_index} / ${j.attempt}`),
    h('td', {}, j.life),
    h('td', {}, j.tenant || '–'),
    h('td', {}, time(j.created_at_ms)),
    h('td', {}, time(j.updated_at_ms)),
    h('td', { class: 'err', title: j.last_error }, j.last_error ? errorCode(j.last_error) : ''),
    h('td', {}, typeof j.progress === 'number' ? h('progress', { max: 1, value: j.progress }) : ''));
}

/// Every job id of the filtered set (up to BULK_MAX), page by page.
async function allIds(f) {
  const ids = [];
  let after = '';
  do {
    const page = await api(`jobs${query({ ...apiFilter(f), limit: 1000, after })}`);
    ids.push(...page.jobs.map((j) => j.job_id));
    after = page.next || '';
  } while (after && ids.length < BULK_MAX);
  return ids.slice(0, BULK_MAX);
}

async function bulk(f, action, body, status) {
  let ids;
  try { ids = await allIds(f); } catch (e) { report(e, 'listing the jobs'); return; }
  if (!ids.length) { notify('No job matches these filters.'); return; }
  const what = Object.entries(f).filter(([, v]) => v).map(([k, v]) => `${k}=${v}`).join(', ') || 'no filter';
  const more = ids.length === BULK_MAX ? ` (the first ${BULK_MAX})` : '';
  if (!(await confirmDialog(`${action} ${ids.length} jobs${more} matching ${what}?`, `${action} ${ids.length} jobs`))) return;
  let done = 0;
  const failed = [];
  const queue = [...ids];
  async function worker() {
    for (let id; (id = queue.shift()) !== undefined;) {
      try { await steer(`${jobPath(id)}/${action.toLowerCase()}`, body); done++; } catch (e) { failed.push(`${id}: ${e.code || e}`); }
      replace(status, `${action}: ${done} done, ${failed.length} refused of ${ids.length}`);
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker));
  if (failed.length) notify(`${action}: ${failed.length} refused, e.g. ${failed.slice(0, 3).join('; ')}`, 'error');
  else notify(`${action}: ${done} jobs.`);
}

export function render(root, ctx) {
  const f = filterOf(ctx.params);
  const after = ctx.params.get('after') || '';
  const list = h('div', { class: 'list' }, h('p', {}, 'Loading…'));
  const status = h('span', { class: 'muted', role: 'status' });
  const filtersSlot = h('div');
  const actions = h('div', { class: 'row bulk' },
    h('button', { onclick: () => bulk(f, 'Retry', {}, status) }, 'Retry all…'),
    h('button', { onclick: () => bulk(f, 'Replay', { from_stage: 0 }, status) }, 'Replay all from the start…'),
    h('button', { class: 'danger', onclick: () => bulk(f, 'Cancel', undefined, status) }, 'Cancel all…'),
    status);
  replace(root, h('h1', {}, 'Jobs'), filtersSlot, actions, list);
  Promise.all([api('pipelines'), api('nodes')])
    .then(([p, nodes]) => replace(filtersSlot, form(f, pipelineNames(p, nodes), ctx)))
    .catch(() => replace(filtersSlot, form(f, f.pipeline ? [f.pipeline] : [], ctx)));
  api(`jobs${query({ ...apiFilter(f), limit: ctx.params.get('limit') || 50, after })}`).then((page) => {
    const base = { ...f, limit: ctx.params.get('limit') || '' };
    const nav = h('nav', { class: 'pager', 'aria-label': 'Pages of jobs' },
      after ? link(`/ui/jobs${query(base)}`, '⇤ Newest') : '',
      after ? h('button', { onclick: () => history.back() }, '← Newer') : '',
      page.next ? link(`/ui/jobs${query({ ...base, after: page.next })}`, 'Older →', { rel: 'next' }) : '');
    replace(list, page.jobs.length
      ? table(['Job', 'Pipeline', 'State', 'Stage / attempt', 'Life', 'Tenant', 'Created', 'Updated', 'Error', 'Progress'], page.jobs.map(row), { id: 'jobs' })
      : h('p', {}, 'No job matches these filters.'), nav);
  }).catch((e) => { replace(list, ''); report(e, 'jobs'); });
}
