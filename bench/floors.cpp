#include "bench/floors.hpp"

#define PQXX_HAVE_OPTIONAL
#include <pqxx/pqxx>

#include "bench/bench_node.hpp"
#include "messages/errc.hpp"

namespace troupe::bench {

namespace {

using ms_samples = std::vector<double>;

double ms_since(clock_type::time_point t0) {
  return seconds_since(t0) * 1000.0;
}

/// Answers every request on its subject at once: a node's reply is flushed
/// promptly too (runtime/nats/prompt_flusher.hpp).
void echo(natsConnection* nc, natsSubscription*, natsMsg* msg, void*) {
  if (const char* reply = natsMsg_GetReply(msg))
    natsConnection_Publish(nc, reply, natsMsg_GetData(msg),
                           natsMsg_GetDataLength(msg));
  natsMsg_Destroy(msg);
}

/// Request→reply through nats-server, asked by the benchmark's own client
/// (the one that submits jobs in the latency scenario).
ms_samples nats_round_trips(const ceiling_inputs& in, int count) {
  nats_connect_options co;
  co.urls = in.nats_url;
  co.send_asap = true;
  auto responder = nats_client::connect(co);
  if (!responder)
    fail(describe(responder.error()));
  natsSubscription* sub = nullptr;
  if (natsConnection_Subscribe(&sub, (*responder)->conn(), "floor.echo", echo,
                               nullptr) != NATS_OK)
    fail("subscribe floor.echo");
  natsConnection_Flush((*responder)->conn());
  ms_samples out;
  auto body = job_body(0);
  for (int i = 0; i < count; ++i) {
    auto t0 = clock_type::now();
    if (!in.client.request("floor.echo", body, 2000))
      fail("no reply on floor.echo");
    out.push_back(ms_since(t0));
  }
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  return out;
}

/// One publish at a time to a file-stored stream like troupe's, each
/// waiting for its ack.
ms_samples js_round_trips(const ceiling_inputs& in, int count) {
  add_work_queue_stream(in.client, "FLOOR", "floor.jobs.>");
  ms_samples out;
  for (int i = 0; i < count; ++i) {
    auto t0 = clock_type::now();
    auto id = "f-" + std::to_string(i);
    if (!in.client.js_publish("floor.jobs.x", job_body(i), id))
      fail("floor publish");
    out.push_back(ms_since(t0));
  }
  jsErrCode jerr{};
  js_DeleteStream(in.client.js(), "FLOOR", nullptr, &jerr);
  return out;
}

/// A read by key outside a transaction (the presence checks' shape) and a
/// one-row upsert committed on its own (begin, statement, commit).
std::pair<ms_samples, ms_samples> pg_round_trips(const ceiling_inputs& in,
                                                 int count) {
  pqxx::connection c{in.pg_url};
  {
    pqxx::work w{c};
    w.exec("create table if not exists bench_floor (job_id text primary "
           "key, state text not null, epoch bigint not null default 1, "
           "payload jsonb)");
    w.exec("truncate bench_floor");
    w.commit();
  }
  ms_samples reads, commits;
  for (int i = 0; i < count; ++i) {
    auto id = "f" + std::to_string(i);
    auto t0 = clock_type::now();
    {
      pqxx::work w{c};
      w.exec_params("insert into bench_floor (job_id, state, payload) values "
                    "($1, 'succeeded', $2::jsonb) on conflict (job_id) do "
                    "update set epoch = bench_floor.epoch + 1",
                    id, job_body(i));
      w.commit();
    }
    commits.push_back(ms_since(t0));
    t0 = clock_type::now();
    pqxx::nontransaction r{c};
    r.exec_params("select job_id from bench_floor where job_id = $1", id);
    reads.push_back(ms_since(t0));
  }
  return {reads, commits};
}

figure floor_figure(const std::string& what, const char* q = "p50") {
  return named("floor", what + ", one at a time: " + q, "ms");
}

/// The p50 and the p99 of `samples` into `f[0]` and `f[1]`.
void add_quantiles(std::vector<figure>& f, const ms_samples& samples) {
  f[0].samples.push_back(q(samples, 0.5));
  f[1].samples.push_back(q(samples, 0.99));
}

} // namespace

std::vector<figure> measure_floors(const ceiling_inputs& in) {
  int count = in.quick ? 100 : 2000;
  // Each floor's p99 beside its p50: the tail a job's path inherits from
  // each part it cannot avoid.
  auto pair = [](const std::string& what) {
    return std::vector<figure>{floor_figure(what), floor_figure(what, "p99")};
  };
  auto nats = pair("NATS request→reply");
  auto js = pair("JetStream publish→ack");
  auto read = pair("PostgreSQL read by key");
  auto commit = pair("PostgreSQL one-row commit");
  for (int r = 0; r < in.runs; ++r) {
    add_quantiles(nats, nats_round_trips(in, count));
    add_quantiles(js, js_round_trips(in, count));
    auto [reads, commits] = pg_round_trips(in, count);
    add_quantiles(read, reads);
    add_quantiles(commit, commits);
  }
  return {nats[0], js[0], read[0], commit[0],
          nats[1], js[1], read[1], commit[1]};
}

double latency_floor_ms(const std::vector<figure>& figs) {
  auto get = [&](const std::string& what) {
    for (auto& f : figs)
      if (f.scenario == "floor" && f.what == what + ", one at a time: p50" &&
          !f.samples.empty())
        return f.median();
    return -1e9;
  };
  auto v = get("NATS request→reply") + get("JetStream publish→ack") +
           2 * get("PostgreSQL read by key") + get("PostgreSQL one-row commit");
  return v < 0 ? -1 : v;
}

} // namespace troupe::bench
