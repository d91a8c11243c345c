#include "runtime/node/stream_tidy.hpp"

#include <spdlog/spdlog.h>

#include "messages/errc.hpp"
#include "runtime/nats/delivery.hpp" // now_ms

namespace troupe {

namespace {

/// How many ended messages a report names.
constexpr std::size_t named_in_report = 50;

} // namespace

stream_tidy::stream_tidy(std::shared_ptr<nats_client> nats, nats_config ncfg,
                         std::string pg_url, input_limits limits)
    : nats_(std::move(nats)), ncfg_(std::move(ncfg)), limits_(limits),
      store_(std::move(pg_url)) {}

/// The pipeline a jobs subject names (`<prefix>.jobs.<p>` or its high band
/// `<prefix>.jobs.<p>.high`), "" for any other subject.
std::string stream_tidy::pipeline_of(const std::string& subject) const {
  auto head = subjects{ncfg_.prefix}.jobs("");
  if (subject.compare(0, head.size(), head) != 0)
    return {};
  auto rest = subject.substr(head.size());
  static const std::string high = ".high";
  if (rest.size() > high.size() &&
      rest.compare(rest.size() - high.size(), high.size(), high) == 0)
    rest.resize(rest.size() - high.size());
  return rest.find('.') == std::string::npos ? rest : std::string{};
}

namespace {

/// Releases the sweep lock however the walk ends (an exception included):
/// a lock left held would stop every node's sweeper for good.
struct sweep_lock_guard {
  stranded_store& store;
  ~sweep_lock_guard() { store.unlock(); }
};

} // namespace

caf::expected<tidy_report> stream_tidy::run(const tidy_request& req) {
  std::unique_lock<std::mutex> one_at_a_time{mtx_, std::try_to_lock};
  tidy_report rep;
  rep.dry_run = req.dry_run;
  auto min_age =
      ncfg_.duplicate_window + ncfg_.ack_wait + std::chrono::milliseconds{5000};
  rep.older_than_ms =
      req.older_than.count() < 0 ? min_age.count() : req.older_than.count();
  if (!one_at_a_time) {
    rep.refused = "a tidy is running on this node; try again";
    return rep;
  }
  // The sweeper's lock: a consumer it makes again meanwhile hands out the
  // messages this walk is reading.
  auto locked = store_.try_lock();
  if (!locked)
    return locked.error();
  if (!*locked) {
    rep.refused = "a node is sweeping the stream right now; try again";
    return rep;
  }
  caf::error err;
  {
    sweep_lock_guard guard{store_};
    err = walk(req, rep);
  }
  if (rep.deleted > 0)
    spdlog::warn("tidy: deleted {} message(s) of ended jobs from the stream "
                 "(first: {})",
                 rep.deleted, rep.messages.front());
  if (err)
    return err;
  return rep;
}

/// Visits every message on the jobs subjects up to the stream's last
/// sequence when the walk began (publications meanwhile are new work), one
/// subject at a time, as the sweeper looks: after a replica reset a lookup
/// on the jobs wildcard was seen to miss a message that the lookup on its
/// own subject found (chaos seed 238, session 23).
caf::error stream_tidy::walk(const tidy_request& req, tidy_report& rep) {
  auto why = replicas_out_of_step(*nats_, ncfg_.stream);
  if (!why)
    return why.error();
  if (!why->empty()) {
    rep.refused = "the stream's replicas are out of step (" + *why +
                  "): deleting now could reset one; restart the "
                  "nats-servers one at a time, then tidy";
    return caf::none;
  }
  auto last = last_sequence(*nats_, ncfg_.stream);
  if (!last)
    return last.error();
  auto held = stored_per_subject(*nats_, ncfg_.stream,
                                 subjects{ncfg_.prefix}.jobs_wildcard());
  if (!held)
    return held.error();
  for (const auto& [subject, count] : *held)
    if (count > 0)
      if (auto err = walk_subject(subject, *last, req, rep);
          err || !rep.refused.empty() || !rep.complete)
        return err;
  return caf::none;
}

caf::error stream_tidy::walk_subject(const std::string& subject,
                                     std::uint64_t last,
                                     const tidy_request& req,
                                     tidy_report& rep) {
  for (std::uint64_t seq = 1; seq <= last;) {
    auto m = next_stored(*nats_, ncfg_.stream, seq, subject);
    if (!m)
      return m.error();
    if (!*m || (*m)->seq > last)
      return caf::none;
    if ((*m)->seq < seq) // a broker answering backwards: never loop
      return make_error(errc::unavailable,
                        "the stream answered the lookup from " +
                            std::to_string(seq) + " with " +
                            std::to_string((*m)->seq));
    seq = (*m)->seq + 1;
    if (!answers_lookup(**m, subject))
      continue; // another subject's, misfiled by a broken index: its own
                // subject's walk judges it
    if (rep.deleted >= req.limit && !req.dry_run) {
      rep.complete = false;
      return caf::none;
    }
    if (auto e = visit(**m, req, rep))
      return e;
    if (!rep.refused.empty())
      return caf::none;
  }
  return caf::none;
}

/// Counts `m`, and deletes it if its job ended (unless a dry run).
caf::error stream_tidy::visit(const stored_message& m, const tidy_request& req,
                              tidy_report& rep) {
  ++rep.examined;
  auto pipeline = pipeline_of(m.subject);
  if (pipeline.empty() || now_ms() - m.published_ms < rep.older_than_ms)
    return caf::none;
  auto spec = decode_delivery(m.fields, pipeline, limits_, now_ms(), nullptr);
  // Input the intake would refuse is not judged here: an undecodable key
  // is dead-lettered under an id of its own, never as the job it names.
  if (!spec.invalid_reason.empty() || spec.job_id.empty())
    return caf::none;
  auto ended = store_.has_ended(spec.job_id, pipeline);
  if (!ended)
    return ended.error();
  if (!*ended)
    return caf::none;
  ++rep.ended;
  if (rep.messages.size() < named_in_report)
    rep.messages.push_back(spec.job_id + "@" + std::to_string(m.seq));
  return req.dry_run ? caf::none : remove(m, spec.job_id, rep);
}

caf::error stream_tidy::remove(const stored_message& m,
                               const std::string& job_id, tidy_report& rep) {
  auto why = replicas_out_of_step(*nats_, ncfg_.stream);
  if (!why)
    return why.error();
  if (!why->empty()) {
    rep.refused = "the stream's replicas came out of step (" + *why +
                  ") during the tidy; it stopped";
    return caf::none;
  }
  // The same message still, and its job still ended: a sequence can be
  // another message's after a replica lost some, and an operator may have
  // started the job's new life meanwhile.
  auto again = stored_at(*nats_, ncfg_.stream, m.seq);
  if (!again)
    return again.error();
  if (!*again || (*again)->subject != m.subject ||
      (*again)->published_ms != m.published_ms ||
      (*again)->fields.msg_id != m.fields.msg_id ||
      (*again)->fields.gen != m.fields.gen)
    return caf::none; // acked or replaced meanwhile
  auto ended = store_.has_ended(job_id, pipeline_of(m.subject));
  if (!ended)
    return ended.error();
  if (!*ended)
    return caf::none;
  if (auto err = delete_stored(*nats_, ncfg_.stream, m.seq))
    return err;
  ++rep.deleted;
  return caf::none;
}

} // namespace troupe
