// The stranded-message sweeper against a real nats-server and PostgreSQL.
// A message the broker stopped tracking looks the way the chaos suite saw
// nats-server 2.9.10 leave them: in the stream, at or below the consumer's
// ack floor, pending nowhere (here: acked in a stream that keeps acked
// messages).
#include <thread>

#define PQXX_HAVE_OPTIONAL
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "messages/errc.hpp"
#include "runtime/nats/stream_messages.hpp"
#include "runtime/node/stranded_sweeper.hpp"
#include "runtime/pg/migrations.hpp"
#include "runtime/pg/submission_log.hpp"
#include "tests/support/db_probe.hpp"
#include "tests/support/test_servers.hpp"

using namespace troupe;
using namespace troupe::test;
using namespace std::chrono_literals;

namespace {

nats_config small_windows(const std::string& url) {
  nats_config c;
  c.url = url;
  c.ack_wait = duration_ms{1000};
  c.duplicate_window = duration_ms{1000};
  c.stranded_sweep = duration_ms{0}; // swept by hand below
  return c;
}

/// Sends a JetStream API request; fails the test on an error reply.
void js_api(nats_client& nats, const std::string& subject,
            const nlohmann::json& body) {
  auto r = nats.request(subject, body.dump(), 5000);
  ASSERT_TRUE(r) << describe(r.error());
  ASSERT_EQ(nlohmann::json::parse(*r).count("error"), 0u) << *r;
}

/// The stream with limits retention (a work-queue stream deletes what is
/// acked, so it cannot hold a message below the ack floor on purpose), and
/// a consumer for `pipeline`.
void stream_that_keeps_acked(nats_client& nats, const std::string& pipeline) {
  js_api(nats, "$JS.API.STREAM.CREATE.TROUPE_JOBS",
         {{"name", "TROUPE_JOBS"},
          {"subjects", {"troupe.jobs.>"}},
          {"retention", "limits"},
          {"storage", "file"},
          {"duplicate_window", 1000000000}});
  js_api(nats, "$JS.API.CONSUMER.DURABLE.CREATE.TROUPE_JOBS.troupe_" + pipeline,
         {{"stream_name", "TROUPE_JOBS"},
          {"config",
           {{"durable_name", "troupe_" + pipeline},
            {"ack_policy", "explicit"},
            {"filter_subject", "troupe.jobs." + pipeline},
            {"max_deliver", -1}}}});
}

/// Takes the next message of `pipeline`'s consumer and acks it.
void take_and_ack(nats_client& nats, const std::string& pipeline) {
  natsMsg* m = nullptr;
  auto next =
      std::string{"$JS.API.CONSUMER.MSG.NEXT.TROUPE_JOBS.troupe_"} + pipeline;
  ASSERT_EQ(natsConnection_RequestString(&m, nats.conn(), next.c_str(),
                                         R"({"batch":1})", 5000),
            NATS_OK);
  ASSERT_EQ(natsConnection_PublishString(nats.conn(), natsMsg_GetReply(m), ""),
            NATS_OK);
  natsMsg_Destroy(m);
  ASSERT_EQ(natsConnection_FlushTimeout(nats.conn(), 2000), NATS_OK);
}

/// A fresh PostgreSQL and nats-server, and the stream for pipeline `p`.
class StrandedSweeper : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(apply_migrations(servers.pg_url()));
    nats = connect_client(servers.nats_url());
    ASSERT_TRUE(nats);
    stream_that_keeps_acked(*nats, "p");
  }

  test_servers servers;
  nats_config cfg = small_windows(servers.nats_url());
  std::shared_ptr<nats_client> nats;
};

} // namespace

/// The next message `pipeline`'s consumer hands out (not acked), "" if none.
std::string next_data(nats_client& nats, const std::string& pipeline) {
  natsMsg* m = nullptr;
  auto next =
      std::string{"$JS.API.CONSUMER.MSG.NEXT.TROUPE_JOBS.troupe_"} + pipeline;
  std::string data;
  if (natsConnection_RequestString(&m, nats.conn(), next.c_str(),
                                   R"({"batch":1,"no_wait":true})",
                                   2000) == NATS_OK &&
      natsMsg_GetDataLength(m) > 0)
    data.assign(natsMsg_GetData(m), natsMsg_GetDataLength(m));
  natsMsg_Destroy(m);
  return data;
}

TEST_F(StrandedSweeper, HandsOutAgainWhatTheBrokerStoppedTracking) {
  auto lost = nats->js_publish("troupe.jobs.p", R"({"payload":1})", "lost-1");
  auto done = nats->js_publish("troupe.jobs.p", R"({"payload":2})", "done-1");
  // Junk with a NUL byte and a broken body: the sweeper reads it as an
  // intake would (it becomes a dead letter when it is delivered again).
  auto junk =
      nats->js_publish("troupe.jobs.p", std::string{"{\"pay\0", 6}, "junk-1");
  ASSERT_TRUE(lost && done && junk);
  // Published long ago, handed out only now (as from a backlog): their age
  // says nothing about how long a node has held them.
  std::this_thread::sleep_for(7500ms);
  // All acked, all still stored: below the ack floor, pending nowhere.
  for (int i = 0; i < 3; ++i)
    take_and_ack(*nats, "p");
  count_rows(servers.pg_url(),
             "with x as (insert into jobs (job_id, pipeline, state) values "
             "('done-1', 'p', 'succeeded') returning 1) select count(*) "
             "from x");
  // Seen behind the consumer in every sweep for duplicate window +
  // ack_wait + 5 s: only then is a message taken for stranded (a first
  // sweep sees them; nothing is done yet). Chaos seed 3 under ASan: 141
  // messages that slow nodes were about to claim were published again.
  stranded_sweeper sweeper{nats, cfg, servers.pg_url(), {"p"}, {}};
  EXPECT_EQ(sweeper.sweep_once().stranded, 0);
  std::this_thread::sleep_for(7500ms);
  auto r = sweeper.sweep_once();
  EXPECT_EQ(r.stranded, 3);
  EXPECT_EQ(r.stranded_to_run, 2); // lost-1, and the junk: no row
  EXPECT_EQ(r.stranded_ended, 1);  // done-1
  EXPECT_EQ(r.remade_consumers, 1);
  // Nothing was deleted nor published again: the consumer made again hands
  // every one out again, in order, and the nodes decide them.
  auto last = last_sequence(*nats, "TROUPE_JOBS");
  ASSERT_TRUE(last);
  EXPECT_EQ(*last, *junk);
  EXPECT_EQ(next_data(*nats, "p"), R"({"payload":1})");
  EXPECT_EQ(next_data(*nats, "p"), R"({"payload":2})");
  EXPECT_EQ(next_data(*nats, "p"), (std::string{"{\"pay\0", 6}));
  // Each is a new delivery now, judged afresh: a sweep right after finds
  // nothing stranded and makes nothing again.
  auto after = sweeper.sweep_once();
  EXPECT_EQ(after.stranded, 0);
  EXPECT_EQ(after.remade_consumers, 0);
}

// The submit API's log: a submission whose message the broker lost (here:
// deleted behind the consumer's back after it was handed out) is published
// again under its job id; one whose job has a row is forgotten; one still
// waiting in the stream is left alone.
TEST_F(StrandedSweeper, PublishesAgainAnAcceptedSubmissionTheBrokerLost) {
  auto log = std::make_shared<submission_log>(servers.pg_url(), 1);
  std::vector<std::uint64_t> seqs;
  for (std::string id : {"lost-2", "claimed-2", "waiting-2"}) {
    auto body = R"({"payload":")" + id + R"("})";
    auto seq = nats->js_publish("troupe.jobs.p", body, id);
    ASSERT_TRUE(seq);
    seqs.push_back(*seq);
    ASSERT_FALSE(log->record({id, "p", "troupe.jobs.p", body, *seq}));
  }
  // Handed out: the first two. The first is lost; the second was claimed
  // and has ended; the third waits in the stream.
  take_and_ack(*nats, "p");
  take_and_ack(*nats, "p");
  ASSERT_FALSE(delete_stored(*nats, "TROUPE_JOBS", seqs[0]));
  count_rows(servers.pg_url(),
             "with x as (insert into jobs (job_id, pipeline, state) values "
             "('claimed-2', 'p', 'succeeded') returning 1) select count(*) "
             "from x");
  stranded_sweeper sweeper{nats, cfg, servers.pg_url(), {"p"}, {}};
  sweeper.set_submission_log(log);
  // Old enough to be looked for: the first sweep only sees lost-2 missing
  // (one look is not enough, chaos seed 14), the next acts.
  std::this_thread::sleep_for(7500ms);
  auto first = sweeper.sweep_once();
  EXPECT_EQ(first.stranded + first.lost, 0);
  std::this_thread::sleep_for(7500ms); // older than min_age, as above
  auto r = sweeper.sweep_once();
  EXPECT_EQ(r.lost, 1);
  EXPECT_EQ(first.forgotten + r.forgotten, 1);
  EXPECT_EQ(r.stranded_ended, 1); // claimed-2's acked copy, kept by `limits`
  auto again = next_stored(*nats, "TROUPE_JOBS", seqs[2] + 1, "troupe.jobs.p");
  ASSERT_TRUE(again && *again);
  EXPECT_EQ((*again)->header("Nats-Msg-Id"), "lost-2");
  EXPECT_EQ((*again)->data, R"({"payload":"lost-2"})");
  EXPECT_EQ(count_rows(servers.pg_url(),
                       "select stream_seq from submissions where job_id = "
                       "'lost-2'"),
            static_cast<std::int64_t>((*again)->seq));
  EXPECT_EQ(count_rows(servers.pg_url(), "select count(*) from submissions"),
            2); // lost-2 (republished) and waiting-2
  // The waiting one was never looked for, and nothing is published twice.
  EXPECT_EQ(sweeper.sweep_once().lost, 0);
}

// A job the scheduler or a replay queued names its message's sequence.
// Gone (deleted after it was handed out), or another job's message there
// (a replica that lost messages numbers new ones from its own end): the
// job goes back to the scheduler. Stranded (still stored, handed out long
// ago): its consumer is made again and hands it out where it is.
TEST_F(StrandedSweeper, HandsAQueuedJobWhoseMessageIsGoneToTheScheduler) {
  std::vector<std::uint64_t> seqs;
  for (std::string id : {"gone-3", "stranded-3", "running-3"}) {
    // As the scheduler publishes generation 1 of a job.
    auto seq = nats->js_publish_headers(
        "troupe.jobs.p", R"({"payload":1})", id + "#g1",
        {{"Troupe-Job-Id", id}, {"Troupe-Gen", "1"}, {"Troupe-Wake", "retry"}});
    ASSERT_TRUE(seq);
    seqs.push_back(*seq);
  }
  for (int i = 0; i < 3; ++i)
    take_and_ack(*nats, "p");
  ASSERT_FALSE(delete_stored(*nats, "TROUPE_JOBS", seqs[0]));
  auto queued = [&](const std::string& id, std::uint64_t seq) {
    return "('" + id + "', 'p', 'queued', 1, " + std::to_string(seq) + ")";
  };
  // moved-3 says its message is where running-3's is.
  count_rows(servers.pg_url(),
             "with x as (insert into jobs (job_id, pipeline, state, gen, "
             "stream_seq) values " +
                 queued("gone-3", seqs[0]) + ", " +
                 queued("stranded-3", seqs[1]) + ", " +
                 queued("moved-3", seqs[2]) +
                 " returning 1) select count(*) from x");
  // A node runs running-3 under a live lease: its message is left alone.
  count_rows(servers.pg_url(),
             "with x as (insert into jobs (job_id, pipeline, state, "
             "lease_owner, lease_until) values ('running-3', 'p', 'running', "
             "'n1', now() + interval '1 hour') returning 1) select count(*) "
             "from x");
  stranded_sweeper sweeper{nats, cfg, servers.pg_url(), {"p"}, {}};
  // Old enough: the first sweep only sees the messages gone or stranded.
  std::this_thread::sleep_for(7500ms);
  auto first = sweeper.sweep_once();
  EXPECT_EQ(first.stranded + first.requeued, 0);
  std::this_thread::sleep_for(7500ms); // older than min_age, as above
  auto r = sweeper.sweep_once();
  EXPECT_EQ(r.stranded_to_run, 1); // stranded-3: handed out again
  EXPECT_EQ(r.remade_consumers, 1);
  EXPECT_EQ(r.requeued, 2);
  EXPECT_EQ(count_rows(servers.pg_url(),
                       "select count(*) from jobs where run_at is not null "
                       "and job_id in ('gone-3', 'moved-3')"),
            2);
  EXPECT_EQ(count_rows(servers.pg_url(),
                       "select count(*) from jobs where job_id = 'stranded-3' "
                       "and run_at is null and stream_seq = " +
                           std::to_string(seqs[1])),
            1);
}

// A stuck consumer counts fewer messages still to hand out than the
// stream holds beyond its delivered sequence (chaos seed 1: 650 stored,
// "0 pending", nothing handed out until the servers restarted); its
// leadership is then moved. A healthy server cannot be made to do that,
// so this test holds the other side (chaos seed 6: the first version of
// the check moved the leaders of six healthy consumers every few seconds,
// counting messages behind the delivered sequence): messages behind it
// (here acked ones that `limits` keeps, of a job a node holds under a live
// lease, so the stranded path leaves them alone) and a pending one ahead
// are not a stuck consumer.
TEST_F(StrandedSweeper, MessagesBehindTheConsumerAreNotAStuckConsumer) {
  ASSERT_TRUE(nats->js_publish("troupe.jobs.p", R"({"payload":1})", "held-4"));
  take_and_ack(*nats, "p");
  ASSERT_TRUE(nats->js_publish("troupe.jobs.p", R"({"payload":2})", "next-4"));
  count_rows(servers.pg_url(),
             "with x as (insert into jobs (job_id, pipeline, state, "
             "lease_owner, lease_until) values ('held-4', 'p', 'running', "
             "'n1', now() + interval '1 hour') returning 1) select count(*) "
             "from x");
  stranded_sweeper sweeper{nats, cfg, servers.pg_url(), {"p"}, {}};
  EXPECT_EQ(sweeper.sweep_once().stuck_consumers, 0);
  std::this_thread::sleep_for(7500ms);
  auto r = sweeper.sweep_once();
  EXPECT_EQ(r.stranded, 0);
  EXPECT_EQ(r.stuck_consumers, 0);
}

// What the sweeper does to a consumer still stuck after two leader moves
// (chaos seeds 4, 16, 19 of session 19: "0 pending", a few "unacked" never
// delivered again). Made again under the same name and config in a
// work-queue stream, it hands out at once every message the stream holds:
// the one handed out and never acked, without waiting for its ack_wait,
// and the one never handed out; not the acked one.
TEST_F(StrandedSweeper, AConsumerMadeAgainHandsOutWhatItHeldBack) {
  nats_config wq = cfg;
  wq.prefix = "wq";
  wq.stream = "WQ";
  wq.ack_wait = duration_ms{60000};
  ASSERT_FALSE(nats->ensure_stream(wq));
  ASSERT_FALSE(nats->ensure_consumer(wq, "p", 7));
  for (std::string id : {"held-5", "acked-5", "never-5"})
    ASSERT_TRUE(nats->js_publish("wq.jobs.p", id, id));
  auto next = [&](bool ack) {
    natsMsg* m = nullptr;
    auto s = natsConnection_RequestString(
        &m, nats->conn(), "$JS.API.CONSUMER.MSG.NEXT.WQ.troupe_p",
        R"({"batch":1,"no_wait":true})", 2000);
    std::string data;
    if (s == NATS_OK && natsMsg_GetDataLength(m) > 0) {
      data.assign(natsMsg_GetData(m), natsMsg_GetDataLength(m));
      if (ack)
        natsConnection_PublishString(nats->conn(), natsMsg_GetReply(m), "");
    }
    natsMsg_Destroy(m);
    return data;
  };
  EXPECT_EQ(next(false), "held-5"); // handed out, never acked
  EXPECT_EQ(next(true), "acked-5");
  ASSERT_EQ(natsConnection_FlushTimeout(nats->conn(), 2000), NATS_OK);

  ASSERT_FALSE(remake_consumer(*nats, "WQ", "troupe_p"));

  auto pos = consumer_position_of(*nats, "WQ", "troupe_p");
  ASSERT_TRUE(pos);
  EXPECT_EQ(pos->pending, 2u);
  EXPECT_EQ(pos->ack_pending, 0u);
  // Well inside the 60 s ack_wait: the held one comes first, then the rest.
  EXPECT_EQ(next(true), "held-5");
  EXPECT_EQ(next(true), "never-5");
  EXPECT_EQ(next(true), "");
  // Its config is the one it had.
  jsConsumerInfo* ci = nullptr;
  ASSERT_EQ(
      js_GetConsumerInfo(&ci, nats->js(), "WQ", "troupe_p", nullptr, nullptr),
      NATS_OK);
  EXPECT_EQ(ci->Config->MaxAckPending, 7);
  EXPECT_EQ(ci->Config->AckWait, 60000LL * 1000000LL);
  EXPECT_STREQ(ci->Config->FilterSubject, "wq.jobs.p");
  jsConsumerInfo_Destroy(ci);
}
