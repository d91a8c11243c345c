// The dashboard (/ui) in Debian's Chromium, driven by playwright-core from
// npm (no browser download: executablePath is the system's), against a real
// 2-node cluster that tests/ui/dashboard_test.cpp starts. Each scenario is
// one `node:test` test; SCENARIO picks which run (the C++ side then checks
// PostgreSQL). Steering is judged by what the server answered, not by what
// the page shows.
//
// Environment: UI_A, UI_B (node base URLs), ADMIN_TOKEN, VIEWER_TOKEN,
// TROUPE (binary), TROUPE_NATS_URL, FLAG (the file whose presence lets
// pipeline `flag` succeed), SHOTS (screenshot directory), CHROMIUM.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const env = process.env;
const A = env.UI_A;
const scenario = env.SCENARIO || '';
const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const feeds = new Set();
after(async () => {
  for (const f of feeds) f.abort();
  await browser.close();
});

async function open(tokenValue, viewport = { width: 1280, height: 800 }) {
  const ctx = await browser.newContext({ viewport });
  await ctx.addInitScript((t) => sessionStorage.setItem('troupe.token', t), tokenValue);
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  return page;
}

function submit(pipeline, key, { count = 1, payload = '{}' } = {}) {
  execFileSync(env.TROUPE, ['submit', pipeline, '--key', key, '--count', String(count),
    '--payload', payload, '--nats', env.TROUPE_NATS_URL], { stdio: 'pipe', timeout: 60000 });
}

async function api(path, token = env.ADMIN_TOKEN) {
  const res = await fetch(`${A}/api/v1/${path}`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

async function until(what, fn, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function shot(page, name) {
  await page.screenshot({ path: `${env.SHOTS}/${name}.png` });
}

/// Opens the node's live feed; resolves once it is connected, to
/// `{ seen }`: a promise of the time the first event of `type` for `jobId`
/// arrived here (rejected after 60 s). (Not the promise itself: an async
/// function would wait for it.)
async function awaitEvent(type, jobId) {
  const ctrl = new AbortController();
  feeds.add(ctrl);
  const timer = setTimeout(() => ctrl.abort(), 60000);
  const res = await fetch(`${A}/api/v1/events`, { headers: { Authorization: `Bearer ${env.ADMIN_TOKEN}` }, signal: ctrl.signal });
  assert.equal(res.status, 200);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const seen = (async () => {
    let buf = '';
    let frames = 0;
    const seenTypes = [];
    for (;;) {
      let value, done;
      try { ({ value, done } = await reader.read()); } catch (e) { throw new Error(`${e.message} after ${frames} reads: ${seenTypes.slice(0, 20).join(' ')}`); }
      if (done) throw new Error(`the feed ended before ${type} of ${jobId}`);
      frames++;
      buf += value;
      const lines = buf.split('\n');
      buf = lines.pop();
      for (const line of lines) {
        if (!line.startsWith('data:')) continue;
        const e = JSON.parse(line.slice(5));
        seenTypes.push(`${e.type}:${e.job_id}`);
        if (e.type === type && e.job_id === jobId) {
          clearTimeout(timer);
          ctrl.abort();
          return Date.now();
        }
      }
    }
  })();
  return { seen };
}

test('the overview lists both nodes', { skip: scenario !== 'reads' }, async () => {
  const page = await open(env.ADMIN_TOKEN);
  await page.goto(`${A}/ui/`);
  await page.locator('#nodes tr[data-node="ui-a"]').waitFor();
  await page.locator('#nodes tr[data-node="ui-b"]').waitFor();
  await page.locator('#pipelines tr[data-pipeline="quick"]').waitFor();
  assert.match(await page.locator('#who').innerText(), /ops · admin/);
  assert.deepEqual(page.errors, []);
});

test("a running job's stage actor shows in the tree and leaves when it ends", { skip: scenario !== 'reads' }, async () => {
  const page = await open(env.ADMIN_TOKEN);
  await page.goto(`${A}/ui/tree`);
  await page.locator('#tree li.node').first().waitFor();
  submit('slow', 'nap');
  const stage = page.locator('li.job[data-job="nap"] li.stage');
  await stage.waitFor({ timeout: 20000 });
  assert.match(await stage.innerText(), /stage actor #\d+ — nap attempt 1/);
  await shot(page, 'tree');
  await page.locator('li.job[data-job="nap"]').waitFor({ state: 'detached', timeout: 20000 });
  assert.deepEqual(page.errors, []);
});

test('jobs page through three pages of jobs', { skip: scenario !== 'reads' }, async () => {
  submit('quick', 'page', { count: 25 });
  await until('25 jobs succeeded', async () => {
    const r = await api('jobs?pipeline=quick&state=succeeded&limit=100');
    return r.body.jobs.length === 25;
  });
  const page = await open(env.ADMIN_TOKEN);
  await page.goto(`${A}/ui/jobs?pipeline=quick&limit=10`);
  const seen = [];
  for (const expected of [10, 10, 5]) {
    await page.locator('#jobs tbody tr').first().waitFor();
    const ids = await page.locator('#jobs tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.job));
    assert.equal(ids.length, expected, `page ${seen.length / 10 + 1}`);
    seen.push(...ids);
    if (seen.length === 10) await shot(page, 'jobs');
    const older = page.getByRole('link', { name: 'Older →' });
    if (expected === 5) { assert.equal(await older.count(), 0, 'no fourth page'); break; }
    await older.click();
    await page.waitForURL(/after=/);
  }
  assert.equal(new Set(seen).size, 25, 'every job once');
  assert.deepEqual(seen.sort(), Array.from({ length: 25 }, (_, i) => `page-${i}`).sort());
  // A job's own page: its timeline and its values.
  await page.locator('#jobs a').first().click();
  await page.locator('#attempts tbody tr').first().waitFor();
  await shot(page, 'job');
  assert.deepEqual(page.errors, []);
});

test('markup in a job id or an error is shown as text, never run', { skip: scenario !== 'reads' }, async () => {
  const key = '<img src=x onerror="window.pwned=1">/"><script>window.pwned=2</script>';
  submit('reject', key, { payload: '{"note":"<b onmouseover=alert(1)>bold?</b>"}' });
  await until('the job dead-lettered', async () => (await api('jobs?pipeline=reject&q=onerror')).body.jobs[0]?.state === 'dead_lettered');
  const page = await open(env.ADMIN_TOKEN);
  let dialogs = 0;
  page.on('dialog', (d) => { dialogs++; d.dismiss(); });
  await page.goto(`${A}/ui/dead-letters`);
  const item = page.locator('#dead-letters li').filter({ hasText: 'onerror' });
  await item.waitFor();
  assert.equal(await item.locator('a').innerText(), key);
  await item.locator('a').click();
  await page.locator('#attempts').waitFor();
  assert.equal(await page.locator('h1 code').innerText(), key);
  assert.match(await page.locator('details.value pre').first().innerText(), /<b onmouseover=alert\(1\)>bold\?<\/b>/);
  await page.goto(`${A}/ui/jobs?q=${encodeURIComponent('<script>')}`);
  await page.locator(`#jobs tbody tr`).first().waitFor();
  assert.equal(await page.locator('#jobs tbody tr').count(), 1);
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.equal(await page.locator('img, script:not([src])').count(), 0);
  assert.equal(dialogs, 0);
  assert.deepEqual(page.errors, []);
});

test('eight tabs of one browser all load and all get the live feed', { skip: scenario !== 'reads' }, async () => {
  // A browser opens six HTTP/1.1 connections per host: a feed per tab left
  // the seventh tab hanging. The tabs share one feed (feed_worker.js).
  const ctx = await browser.newContext();
  await ctx.addInitScript((t) => sessionStorage.setItem('troupe.token', t), env.ADMIN_TOKEN);
  const tabs = [];
  for (let i = 0; i < 8; i++) {
    const tab = await ctx.newPage();
    await tab.goto(`${A}/ui/`, { timeout: 10000 });
    await tab.locator('#nodes tr[data-node="ui-a"]').waitFor({ timeout: 10000 });
    await tab.locator('#live', { hasText: 'feed: live' }).waitFor({ timeout: 10000 });
    tabs.push(tab);
  }
  submit('busy', 'tabs');
  for (const tab of tabs) await tab.locator('#h-live').waitFor();
  await ctx.close();
});

test('the overview charts what the live feed reports', { skip: scenario !== 'reads' }, async () => {
  const page = await open(env.ADMIN_TOKEN);
  await page.goto(`${A}/ui/`);
  await page.locator('#nodes tr[data-node="ui-b"]').waitFor();
  for (let i = 0; i < 6; i++) {
    submit('busy', `load-${i}`, { count: 100 * (i + 1) });
    await page.waitForTimeout(700);
  }
  await page.waitForTimeout(2500); // the counts refresh every 5 s
  const caption = await page.locator('figcaption').first().innerText();
  assert.match(caption, /^Jobs finished — succeeded \d+ jobs\/s/);
  await shot(page, 'overview');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, 'overview-phone');
  assert.deepEqual(page.errors, []);
});

/// Presses Tab until `wanted(activeElement)` holds (at most 40 times);
/// returns what is focused.
async function tabTo(page, what, wanted) {
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab');
    const hit = await page.evaluate(wanted);
    if (hit) return hit;
  }
  throw new Error(`Tab never reached ${what}`);
}

test('the keyboard alone reaches a job, whose page gets its own events live', { skip: scenario !== 'reads' }, async () => {
  // The overview's feed asks only for terminal events; the job page then
  // asks for every event of its job, so its stage events prove the feed
  // changed filter without losing or repeating any.
  const page = await open(env.ADMIN_TOKEN);
  await page.goto(`${A}/ui/`);
  await page.locator('#nodes tr[data-node="ui-a"]').waitFor();
  await page.locator('#live', { hasText: 'feed: live' }).waitFor();
  submit('slow', 'kb-nap');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
  await tabTo(page, 'the Jobs link', () => document.activeElement.matches('nav a[href="/ui/jobs"]'));
  assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), 'none',
    'the focused link shows it');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/ui\/jobs$/);
  await tabTo(page, 'the text filter', () => document.activeElement.id === 'f-q');
  await page.keyboard.type('kb-nap');
  await page.keyboard.press('Enter');
  await page.waitForURL(/q=kb-nap/);
  await page.locator('#jobs tbody tr[data-job="kb-nap"]').waitFor();
  await tabTo(page, "the job's link", () => document.activeElement.matches('#jobs a') && document.activeElement.textContent === 'kb-nap');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/ui\/jobs\/kb-nap$/);
  const live = page.locator('ol.events.live li');
  await live.filter({ hasText: 'job.succeeded' }).waitFor({ timeout: 20000 });
  const rows = await live.allInnerTexts();
  assert.ok(rows.some((r) => r.includes('stage.succeeded')), `a stage event, which the overview's feed leaves out: ${rows.join(' | ')}`);
  assert.equal(new Set(rows).size, rows.length, `each event once: ${rows.join(' | ')}`);
  assert.deepEqual(page.errors, []);
});

test('a dead letter appears at once, is replayed from the page and succeeds', { skip: scenario !== 'dead-letter' }, async () => {
  const page = await open(env.ADMIN_TOKEN);
  await page.goto(`${A}/ui/dead-letters?pipeline=flag`);
  await page.getByText('No dead letters.').waitFor();
  await page.locator('#live', { hasText: 'feed: live' }).waitFor();
  const event = await awaitEvent('job.dead_lettered', 'dl-1');
  submit('flag', 'dl-1');
  const row = page.locator('li[data-job="dl-1"]');
  await row.waitFor({ timeout: 30000 });
  const shown = Date.now();
  const delay = shown - (await event.seen);
  console.log(`dead letter shown ${delay} ms after its event reached this client`);
  assert.ok(delay <= 1000, `shown ${delay} ms after the event`);
  await shot(page, 'dead-letters');
  writeFileSync(env.FLAG, 'ok\n'); // the stage succeeds from now on
  const replay = page.waitForResponse((r) => r.url().endsWith('/api/v1/jobs/dl-1/replay'));
  await page.getByRole('button', { name: 'Replay from the failed stage' }).click();
  await page.getByRole('button', { name: 'Replay 1' }).click();
  assert.equal((await replay).status(), 200);
  await page.goto(`${A}/ui/jobs/dl-1`);
  await page.locator('.facts .badge.s-succeeded').waitFor({ timeout: 30000 });
  await page.locator('section.life[data-life="2"]').waitFor();
  await shot(page, 'job-two-lives');
  assert.deepEqual(page.errors, []);
});

test('a viewer sees every page and the server refuses each steering button', { skip: scenario !== 'viewer' }, async () => {
  submit('flag', 'dl-v');
  await until('dl-v dead-lettered', async () => (await api('jobs/dl-v')).body.job?.state === 'dead_lettered');
  const page = await open(env.VIEWER_TOKEN);
  const posts = [];
  page.on('response', (r) => { if (r.request().method() === 'POST') posts.push([r.url(), r.status()]); });
  const press = async (name, confirm, within = page) => {
    const before = posts.length;
    await within.getByRole('button', { name, exact: true }).first().click();
    if (confirm) await page.getByRole('dialog').getByRole('button', { name: confirm, exact: typeof confirm === 'string' }).click();
    await until(`a reply to ${name}`, () => posts.length > before, 10000);
    await page.locator('#notice .error').waitFor();
  };
  await page.goto(`${A}/ui/`);
  await page.locator('#nodes tr[data-node="ui-a"]').waitFor();
  assert.match(await page.locator('#who').innerText(), /ann · viewer/);
  await page.goto(`${A}/ui/pipelines`);
  await page.locator('#pipelines tr[data-pipeline="flag"]').waitFor();
  await shot(page, 'pipelines');
  await press('Pause', 'Pause flag', page.locator('tr[data-pipeline="flag"]'));
  await page.goto(`${A}/ui/jobs/dl-v`);
  await page.locator('#attempts').waitFor();
  await press('Cancel', 'Cancel');
  await press('Retry from');
  await press('Replay from the failed stage');
  await press('Replay from the start');
  await shot(page, 'viewer-refused');
  await page.goto(`${A}/ui/dead-letters`);
  await page.locator('li[data-job="dl-v"]').waitFor();
  const group = page.locator('section.group[data-pipeline="flag"]');
  await press('Replay from the failed stage', /^Replay \d+$/, group);
  await press('Replay from the start', /^Replay \d+$/, group);
  await page.goto(`${A}/ui/jobs?pipeline=flag&q=dl-v`);
  await page.locator('#jobs tbody tr').first().waitFor();
  await press('Retry all…', 'Retry 1 jobs');
  await press('Replay all from the start…', 'Replay 1 jobs');
  await press('Cancel all…', 'Cancel 1 jobs');
  await page.goto(`${A}/ui/tree`);
  await page.locator('#tree li.node').first().waitFor();
  const refused = posts.filter(([, s]) => s === 403).length;
  console.log(`viewer: ${posts.length} steering requests, ${refused} refused with 403`);
  assert.equal(posts.length, 10, JSON.stringify(posts));
  assert.equal(refused, posts.length, JSON.stringify(posts));
  assert.deepEqual(page.errors, []);
});
