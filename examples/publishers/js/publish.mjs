// Submits one job to troupe and waits for its end, with the npm `nats`
// client (the NATS maintainers' own).
//
//   node publish.mjs PIPELINE KEY PAYLOAD_JSON
//
// Exit 0: the job succeeded; 1: it ended otherwise; 2: the submission was
// refused (its code and message are printed). See ../README.md.
import { connect, JSONCodec } from "nats";

const jc = JSONCodec();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Codes that may pass when the same request (same key) is sent again.
const retryable = (code) => code === "unavailable" || code === "rate_limited";

class Refused extends Error {
  constructor(error) {
    super(`${error.code}: ${error.message}`);
    this.error = error;
  }
}

async function request(nc, subject, body, timeout) {
  try {
    return jc.decode((await nc.request(subject, jc.encode(body), { timeout })).data);
  } catch (e) {
    return null; // no responders (503) or timeout: worth another try
  }
}

async function submit(nc, pipeline, key, payload) {
  let backoff = 100;
  let last = { code: "unavailable", message: "no troupe node answered" };
  for (let attempt = 0; attempt < 8; attempt++) {
    const r = await request(nc, "troupe.api.v1.submit", { pipeline, key, payload }, 5000);
    let wait = backoff;
    if (r && r.ok) return r.job_id;
    if (r && !retryable(r.error.code)) throw new Refused(r.error);
    if (r) {
      last = r.error;
      wait = r.error.retry_after_ms || backoff;
    }
    await sleep(wait);
    backoff = Math.min(backoff * 2, 5000);
  }
  throw new Refused(last);
}

async function waitForEnd(nc, jobId) {
  for (let i = 0; i < 60; i++) {
    const r = await request(nc, "troupe.api.v1.wait", { job_id: jobId, timeout_ms: 10000 }, 15000);
    if (r && r.done) return r.job;
    if (!r) await sleep(1000); // no node answers: ask again
  }
  return null;
}

async function main() {
  const [pipeline, key, text] = process.argv.slice(2);
  if (text === undefined) {
    console.error("usage: node publish.mjs PIPELINE KEY PAYLOAD_JSON");
    return 64;
  }
  let payload;
  try {
    payload = JSON.parse(text);
  } catch (e) {
    console.error(`PAYLOAD_JSON is not JSON: ${e.message}`);
    return 64;
  }
  const nc = await connect({
    servers: process.env.TROUPE_NATS_URL || "nats://127.0.0.1:4222",
    name: "publish-js",
  });
  try {
    const jobId = await submit(nc, pipeline, key, payload);
    const job = await waitForEnd(nc, jobId);
    if (!job) {
      console.log(`${jobId} unknown: no end within 10 minutes`);
      return 1;
    }
    const ok = job.state === "succeeded";
    console.log(job.job_id, job.state, JSON.stringify(ok ? job.result : job.error));
    return ok ? 0 : 1;
  } catch (e) {
    if (!(e instanceof Refused)) throw e;
    console.log(`refused ${e.error.code}: ${e.error.message}`);
    return 2;
  } finally {
    await nc.close();
  }
}

process.exitCode = await main();
