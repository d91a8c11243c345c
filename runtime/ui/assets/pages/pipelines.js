// Pipelines: pause and resume (cluster-wide, kept in PostgreSQL), with
// their job counts; and the cron schedules with pause, resume, trigger and
// delete.

import { h, replace, table, link, time, badge, confirmDialog } from '../lib/dom.js';
import { api, steer } from '../lib/api.js';
import { notify, report } from '../lib/notice.js';
import { pipelineNames } from './overview.js';

async function act(path, what, reload, question) {
  if (question && !(await confirmDialog(question, what))) return;
  try { await steer(path); notify(`${what}: done.`); } catch (e) { report(e, what); }
  reload();
}

function pipelineRows(counts, nodes, reload) {
  return pipelineNames(counts, nodes).map((name) => {
    const p = counts[name] || {};
    const st = p.states || {};
    const path = `pipelines/${encodeURIComponent(name)}`;
    return h('tr', { dataset: { pipeline: name } },
      h('th', { scope: 'row' }, link(`/ui/jobs?pipeline=${encodeURIComponent(name)}`, name)),
      h('td', {}, p.paused ? badge('paused') : badge('running')),
      h('td', {}, Object.entries(st).map(([k, v]) => `${k.replace('_', ' ')} ${v}`).join(', ') || '–'),
      h('td', {}, p.paused
        ? h('button', { onclick: () => act(`${path}/unpause`, `Resume ${name}`, reload) }, 'Resume')
        : h('button', { onclick: () => act(`${path}/pause`, `Pause ${name}`, reload, `Pause ${name} on every node? Running jobs finish; no new job starts.`) }, 'Pause')));
  });
}

function scheduleRows(schedules, reload) {
  return schedules.map((s) => {
    const path = `schedules/${encodeURIComponent(s.name)}`;
    return h('tr', { dataset: { schedule: s.name } },
      h('th', { scope: 'row' }, s.name),
      h('td', {}, h('code', {}, s.cron), s.timezone ? ` ${s.timezone}` : ''),
      h('td', {}, s.pipeline),
      h('td', {}, s.paused ? badge('paused') : time(s.next_at_ms)),
      h('td', {}, s.last_job ? h('span', {}, link(`/ui/jobs/${encodeURIComponent(s.last_job)}`, s.last_job), ' ', s.last_job_state ? badge(s.last_job_state) : '') : '–'),
      h('td', { class: 'row' },
        h('button', { onclick: () => act(`${path}/${s.paused ? 'resume' : 'pause'}`, `${s.paused ? 'Resume' : 'Pause'} ${s.name}`, reload) }, s.paused ? 'Resume' : 'Pause'),
        h('button', { onclick: () => act(`${path}/trigger`, `Trigger ${s.name}`, reload) }, 'Run now'),
        h('button', { class: 'danger', onclick: () => act(`${path}/delete`, `Delete ${s.name}`, reload, `Delete schedule ${s.name}?`) }, 'Delete')));
  });
}

export function render(root) {
  const pipes = h('section', {}, h('h2', {}, 'Pipelines'), h('p', {}, 'Loading…'));
  const scheds = h('section', {}, h('h2', {}, 'Schedules'));
  replace(root, h('h1', {}, 'Pipelines'), pipes, scheds);
  async function load() {
    try {
      const [counts, nodes, sched] = await Promise.all([api('pipelines'), api('nodes'), api('schedules')]);
      replace(pipes, pipes.firstChild, table(['Pipeline', 'Intake', 'Jobs', ''], pipelineRows(counts, nodes, load), { id: 'pipelines' }));
      const list = sched.schedules || [];
      replace(scheds, scheds.firstChild, list.length
        ? table(['Schedule', 'Cron', 'Pipeline', 'Next', 'Last job', ''], scheduleRows(list, load), { id: 'schedules' })
        : h('p', { class: 'muted' }, 'No schedules.'));
    } catch (e) { report(e, 'pipelines'); }
  }
  load();
  const timer = setInterval(load, 5000);
  return () => clearInterval(timer);
}
