#include "bench/ceilings.hpp"

#include <algorithm>

#define PQXX_HAVE_OPTIONAL
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

namespace troupe::bench {

using json = nlohmann::json;

void add_work_queue_stream(nats_client& client, const std::string& name,
                           const std::string& subject) {
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = name.c_str();
  const char* subjects[] = {subject.c_str()};
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Retention = js_WorkQueuePolicy;
  sc.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr{};
  if (js_AddStream(&si, client.js(), &sc, nullptr, &jerr) != NATS_OK)
    fail("add stream " + name);
  jsStreamInfo_Destroy(si);
}

std::vector<figure> measure_ceilings(const ceiling_inputs& in) {
  std::vector<figure> out;
  int count = in.quick ? 2000 : 20000;
  figure pub{"ceiling", "JetStream publish (async, acked)", "msg/s", {}, ""};
  figure con{"ceiling", "JetStream pull + explicit ack", "msg/s", {}, ""};
  figure both{"ceiling", "JetStream publish→consume→ack", "msg/s", {}, ""};
  for (int r = 0; r < in.runs; ++r) {
    auto stream = "CEIL" + std::to_string(r);
    auto subj = "ceil" + std::to_string(r) + ".>";
    add_work_queue_stream(in.client, stream, subj);
    jsErrCode jerr{};
    auto tp = publish_all(in.async_js, "ceil" + std::to_string(r) + ".jobs",
                          "c-", count);
    natsSubscription* sub = nullptr;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.MaxAckPending = 20000;
    if (js_PullSubscribe(&sub, in.client.js(), subj.c_str(), "ceil", nullptr,
                         &so, &jerr) != NATS_OK)
      fail("pull subscribe");
    auto t0 = clock_type::now();
    int got = 0;
    while (got < count) {
      natsMsgList list{nullptr, 0};
      if (natsSubscription_Fetch(&list, sub, 256, 2000, &jerr) != NATS_OK)
        continue;
      for (int i = 0; i < list.Count; ++i)
        natsMsg_Ack(list.Msgs[i], nullptr);
      got += list.Count;
      natsMsgList_Destroy(&list);
    }
    natsConnection_Flush(in.client.conn());
    auto tc = seconds_since(t0);
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    js_DeleteStream(in.client.js(), stream.c_str(), nullptr, &jerr);
    pub.samples.push_back(count / tp);
    con.samples.push_back(count / tc);
    both.samples.push_back(count / (tp + tc));
  }
  out.push_back(pub);
  out.push_back(con);
  out.push_back(both);

  // PostgreSQL: rows shaped like troupe's jobs rows.
  int rows = in.quick ? 2000 : 20000;
  int single = in.quick ? 300 : 2000;
  figure batched{"ceiling",
                 "PostgreSQL batched upsert (256 rows/commit)",
                 "rows/s",
                 {},
                 ""};
  figure one{"ceiling", "PostgreSQL single-row commits", "rows/s", {}, ""};
  pqxx::connection c{in.pg_url};
  {
    pqxx::work w{c};
    w.exec("create table if not exists bench_jobs (job_id text primary key, "
           "pipeline text not null, state text not null, stage_index int, "
           "attempt int, epoch bigint, payload jsonb, updated_at timestamptz "
           "default now())");
    w.commit();
  }
  for (int r = 0; r < in.runs; ++r) {
    {
      pqxx::work w{c};
      w.exec("truncate bench_jobs");
      w.commit();
    }
    auto t0 = clock_type::now();
    for (int b = 0; b < rows; b += 256) {
      json recs = json::array();
      for (int i = b; i < std::min(rows, b + 256); ++i)
        recs.push_back({{"job_id", "b" + std::to_string(i)},
                        {"pipeline", "bench"},
                        {"payload", json::parse(job_body(i))["payload"]}});
      pqxx::work w{c};
      w.exec_params(
          "insert into bench_jobs as j (job_id, pipeline, state, "
          "stage_index, attempt, epoch, payload) select job_id, pipeline, "
          "'running', 0, 0, 1, payload from jsonb_to_recordset($1::jsonb) "
          "as r(job_id text, pipeline text, payload jsonb) on conflict "
          "(job_id) do update set epoch = j.epoch + 1, state = 'running', "
          "updated_at = now()",
          recs.dump());
      w.commit();
    }
    batched.samples.push_back(rows / seconds_since(t0));
    t0 = clock_type::now();
    for (int i = 0; i < single; ++i) {
      pqxx::work w{c};
      w.exec_params("insert into bench_jobs (job_id, pipeline, state, "
                    "payload) values ($1, 'bench', 'running', $2::jsonb) "
                    "on conflict (job_id) do update set epoch = "
                    "bench_jobs.epoch + 1",
                    "s" + std::to_string(i), job_body(i));
      w.commit();
    }
    one.samples.push_back(single / seconds_since(t0));
  }
  out.push_back(batched);
  out.push_back(one);
  return out;
}

} // namespace troupe::bench
