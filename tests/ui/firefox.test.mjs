// The dashboard in Debian's Firefox ESR, driven by puppeteer-core over
// WebDriver BiDi (no browser download: executablePath is the system's).
// The pages are plain JavaScript modules, a module SharedWorker for the
// live feed, fetch streams and <dialog>; this runs the path that needs
// all of them: the overview with both nodes and a live feed, a dead letter
// that appears on its page as it happens and is replayed from its job's
// page, and a running job cancelled through a dialog, its events live. dashboard_test.cpp then checks PostgreSQL.
//
// Environment: as dashboard.test.mjs, plus FIREFOX (the binary).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import puppeteer from 'puppeteer-core';

const env = process.env;
const A = env.UI_A;
const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: env.FIREFOX || '/usr/bin/firefox-esr',
  headless: true,
});
after(() => browser.close());

function submit(pipeline, key) {
  execFileSync(env.TROUPE, ['submit', pipeline, '--key', key, '--nats', env.TROUPE_NATS_URL],
    { stdio: 'pipe', timeout: 60000 });
}

async function open() {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  // The token as the sign-in form keeps it: in this tab's sessionStorage.
  await page.goto(`${A}/ui/pipelines`);
  await page.evaluate((t) => sessionStorage.setItem('troupe.token', t), env.ADMIN_TOKEN);
  return page;
}

/// The first element whose text is exactly `text`, once there.
function byText(page, tag, text, timeout = 30000) {
  return page.waitForSelector(`::-p-xpath(//${tag}[normalize-space()=${JSON.stringify(text)}])`, { timeout });
}

test('Firefox: overview, a live dead letter replayed from the page, a job page', async () => {
  const page = await open();
  await page.goto(`${A}/ui/`);
  await page.waitForSelector('#nodes tr[data-node="ui-a"]');
  await page.waitForSelector('#nodes tr[data-node="ui-b"]');
  assert.match(await page.$eval('#who', (e) => e.textContent), /ops · admin/);
  await byText(page, '*[@id="live"]', 'feed: live');

  // A dead letter shows on its page as it happens, and is replayed from
  // its job's page.
  await page.goto(`${A}/ui/dead-letters?pipeline=flag`);
  await page.waitForSelector('#dead-letters');
  await byText(page, '*[@id="live"]', 'feed: live');
  submit('flag', 'ff-1');
  await (await page.waitForSelector('li[data-job="ff-1"] a', { timeout: 30000 })).click();
  await page.waitForSelector('#attempts');
  writeFileSync(env.FLAG, 'ok\n'); // the stage succeeds from now on
  await (await byText(page, 'button', 'Replay from the failed stage')).click();
  await page.waitForSelector('section.life[data-life="2"]', { timeout: 30000 });
  await page.waitForSelector('.facts .badge.s-succeeded', { timeout: 30000 });
  await page.screenshot({ path: `${env.SHOTS}/firefox-job.png` });

  // A running job is cancelled through the page's <dialog>, and its page
  // shows the events as they happen.
  submit('slow', 'ff-nap');
  await page.goto(`${A}/ui/jobs/ff-nap`);
  await page.waitForSelector('.facts .badge.s-running', { timeout: 30000 });
  await (await byText(page, 'button', 'Cancel')).click();
  await (await byText(page, 'dialog//button', 'Cancel')).click();
  await page.waitForFunction(() => [...document.querySelectorAll('ol.events.live li')]
    .some((li) => li.textContent.includes('job.cancelled')), { timeout: 30000 });
  assert.deepEqual(page.errors, []);
});
