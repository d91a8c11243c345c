#include "runtime/node/stranded_sweeper.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "messages/errc.hpp"
#include "runtime/nats/delivery.hpp" // now_ms

namespace troupe {

stranded_sweeper::stranded_sweeper(std::shared_ptr<nats_client> nats,
                                   nats_config ncfg, std::string pg_url,
                                   std::vector<std::string> pipelines,
                                   input_limits limits)
    : nats_(std::move(nats)), ncfg_(std::move(ncfg)), store_(std::move(pg_url)),
      limits_(limits),
      // Older than the duplicate window, or publishing it again under its
      // own id would be dropped; and past ack_wait, or it may just be a
      // delivery being acked right now.
      min_age_(ncfg_.duplicate_window + ncfg_.ack_wait +
               std::chrono::milliseconds{5000}) {
  subjects subj{ncfg_.prefix};
  for (auto& p : pipelines)
    lanes_.push_back({p, subj.jobs(p), subj.consumer(p)});
}

void stranded_sweeper::add_high_band(const std::string& pipeline) {
  subjects subj{ncfg_.prefix};
  lanes_.push_back(
      {pipeline, subj.jobs_high(pipeline), subj.consumer_high(pipeline)});
}

/// The lane of a message on `subject` (a logged submission's), else the
/// pipeline's own (also of a pipeline another node runs).
stranded_sweeper::lane
stranded_sweeper::lane_of(const std::string& pipeline,
                          const std::string& subject) const {
  for (const auto& l : lanes_)
    if (l.subject == subject)
      return l;
  subjects subj{ncfg_.prefix};
  return {pipeline, subj.jobs(pipeline), subj.consumer(pipeline)};
}

stranded_sweeper::~stranded_sweeper() {
  stop();
}

void stranded_sweeper::set_submission_log(std::shared_ptr<submission_log> log) {
  log_ = std::move(log);
}

void stranded_sweeper::start() {
  if (ncfg_.stranded_sweep.count() <= 0)
    return;
  thread_ = std::thread{[this] { loop(); }};
}

void stranded_sweeper::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable())
    thread_.join();
}

void stranded_sweeper::loop() {
  std::unique_lock<std::mutex> lock{mtx_};
  while (!cv_.wait_for(lock, ncfg_.stranded_sweep, [&] { return stopping_; })) {
    lock.unlock();
    flush_kept_submissions();
    auto r = sweep_once();
    if (r.deferred != last_deferred_)
      log_deferral(r.deferred);
    last_deferred_ = r.deferred;
    log_result(r);
    lock.lock();
  }
}

void stranded_sweeper::log_result(const result& r) {
  if (r.stuck_consumers > 0)
    spdlog::warn("sweeper: {} consumer(s) stopped handing out messages the "
                 "stream holds: their leader moved",
                 r.stuck_consumers);
  if (r.lost > 0 || r.requeued > 0)
    spdlog::warn("sweeper: the broker lost the messages of {} accepted "
                 "submission(s), published again, and of {} queued "
                 "job(s), handed to the scheduler",
                 r.lost, r.requeued);
  if (r.misfiled > 0)
    spdlog::error("sweeper: the broker answered {} lookup(s) on one subject "
                  "with another subject's message ({}): its subject index "
                  "is broken (seen after a replica reset) and the consumers "
                  "may never hand those messages out; restart the "
                  "nats-servers one at a time",
                  r.misfiled, r.first_misfiled);
  if (r.stranded > 0)
    spdlog::warn("sweeper: {} message(s) the broker stopped tracking ({} of "
                 "jobs that must run, {} of jobs that ended or wait in the "
                 "store)",
                 r.stranded, r.stranded_to_run, r.stranded_ended);
}

/// Every node writes the submissions its API kept while PostgreSQL was
/// away, whoever sweeps.
void stranded_sweeper::flush_kept_submissions() {
  if (!log_ || log_->backlog() == 0)
    return;
  log_->flush_backlog(); // it says what it wrote
}

void stranded_sweeper::log_deferral(const std::string& why) {
  if (why.empty())
    spdlog::info("sweeper: the stream's replicas are in step again");
  else
    spdlog::warn("sweeper: the stream's replicas are out of step: {}", why);
}

stranded_sweeper::result stranded_sweeper::sweep_once() {
  result r;
  auto locked = store_.try_lock();
  if (!locked || !*locked)
    return r;
  // Lost messages first: a consumer made again by the walk starts from
  // the first stored message, and a message is looked for only once its
  // consumer has passed it.
  sweep_lost(r);
  sweep_pipelines(r);
  watch_consumers(r);
  store_.unlock();
  stats_->stranded_to_run += r.stranded_to_run;
  stats_->stranded_ended += r.stranded_ended;
  stats_->lost += r.lost;
  stats_->requeued += r.requeued;
  stats_->stuck_consumers += r.stuck_consumers;
  stats_->remade_consumers += r.remade_consumers;
  stats_->deferred += r.deferred.empty() ? 0 : 1;
  stats_->misfiled += r.misfiled;
  return r;
}

/// Walks every lane for stranded messages, unless the stream's replicas are
/// out of step: a deletion then could reset a replica (stream_messages.hpp).
void stranded_sweeper::sweep_pipelines(result& r) {
  // Replicas out of step are reported, and swept through all the same:
  // the sweeper deletes nothing since session 20 (deleting past a lagging
  // replica's end reset it), and a consumer made again or moved is the
  // remedy chaos seed 47 needed while a replica stayed "not current" for
  // minutes. Only a stream without a leader cannot be read.
  auto why = replicas_out_of_step(*nats_, ncfg_.stream);
  r.deferred = !why ? "stream info: " + describe(why.error()) : *why;
  if (why && *why != "no leader")
    for (const auto& l : lanes_)
      sweep_pipeline(l, r);
  else
    walked_.clear(); // nor is a consumer judged stuck on old counts
  // A walk that broke off (a consumer leader moving) or did not happen
  // forgets no sighting: only a sweep that walked every lane through
  // prunes them.
  if (walked_.size() < lanes_.size())
    seen_now_.insert(sighted_.begin(), sighted_.end());
  sighted_ = std::move(seen_now_);
  seen_now_.clear();
  for (auto seq : forget_)
    sighted_.erase(seq);
  forget_.clear();
}

void stranded_sweeper::sweep_pipeline(const lane& l, result& r) {
  walked_.erase(l.consumer);
  auto pos = consumer_position_of(*nats_, ncfg_.stream, l.consumer);
  if (!pos)
    return;
  // In a work-queue stream an acknowledged message is deleted. One still
  // there that the consumer handed out long ago is either pending (then a
  // node holds its job under a live lease, or the broker redelivers it
  // after ack_wait) or lost: the broker's bookkeeping was seen to drop
  // pending deliveries (chaos seed 1: 28 messages above the ack floor,
  // none pending). The store tells which.
  // A consumer made again less than min_age ago (by any node) is handing
  // out again what it holds: nothing behind it is stranded yet.
  bool judged = now_ms() - pos->created_ms >= min_age_.count();
  std::uint64_t seq = 1, walked = 0;
  std::vector<std::uint64_t> seen;
  int stranded = 0;
  while (seq <= pos->delivered) {
    auto m = next_stored(*nats_, ncfg_.stream, seq, l.subject);
    if (!m)
      return; // not walked to the end: the count below would lie
    if (!*m || (*m)->seq > pos->delivered)
      break;
    seq = (*m)->seq + 1;
    if (!answers_lookup(**m, l.subject)) {
      note_misfiled(l, **m, r);
      continue; // not this consumer's to hand out: remaking it cannot help
    }
    ++walked;
    seen.push_back((*m)->seq);
    if (judged && !(*m)->subject.empty() && stranded_now(**m, l.pipeline, r))
      ++stranded;
  }
  walked_[l.consumer] = walked;
  if (stranded > 0 &&
      remake(l.consumer, "it stopped tracking " + std::to_string(stranded) +
                             " message(s) it handed out")) {
    ++r.remade_consumers;
    // Handed out again: each is a new delivery, judged afresh.
    forget_.insert(forget_.end(), seen.begin(), seen.end());
  }
}

void stranded_sweeper::note_misfiled(const lane& l, const stored_message& m,
                                     result& r) {
  if (r.misfiled++ == 0)
    r.first_misfiled = "asked " + l.subject + ", got " + m.subject + " at " +
                       std::to_string(m.seq);
}

/// Whether `m` is stranded: behind its consumer in every sweep for
/// min_age, and its job held by no node. Its job ended or waits in the
/// store (the delivery is then acked as stale), or must run; either way
/// the consumer made again hands it out and a node decides it, as any
/// delivery. Deleting or publishing it again is what the sweeper did
/// until session 20: nats-server 2.9.10 reset two of three replicas 30 ms
/// after such a deletion (chaos seed 25) and 0.7 s after one (session 18,
/// seed 1), and a consumer made again needs neither.
bool stranded_sweeper::stranded_now(const stored_message& m,
                                    const std::string& pipeline, result& r) {
  auto age = std::chrono::milliseconds{now_ms() - m.published_ms};
  if (!seen_long_enough(m.seq) || age < min_age_)
    return false;
  auto spec = decode_delivery(m.fields, pipeline, limits_, now_ms(), nullptr);
  auto standing = store_.standing_of(spec.job_id);
  if (!standing || *standing == job_standing::held)
    return false;
  ++r.stranded;
  if (*standing == job_standing::terminal ||
      *standing == job_standing::in_store)
    ++r.stranded_ended;
  else
    ++r.stranded_to_run;
  return true;
}

/// Notes that `seq` is behind its consumer in this sweep; true once it has
/// been in every sweep for min_age.
bool stranded_sweeper::seen_long_enough(std::uint64_t seq) {
  auto now = std::chrono::steady_clock::now();
  auto first = sighted_.find(seq);
  auto since = first == sighted_.end() ? now : first->second;
  seen_now_[seq] = since;
  return now - since >= min_age_;
}

} // namespace troupe

namespace troupe {

void stranded_sweeper::sweep_lost(result& r) {
  auto last = last_sequence(*nats_, ncfg_.stream);
  if (!last)
    return;
  positions delivered;
  sweep_submissions(*last, delivered, r);
  sweep_queued(*last, delivered, r);
  // Forget jobs no longer missing (found, claimed, or acted on).
  missing_ = std::move(missing_now_);
  missing_now_.clear();
}

/// Whether the job's message should have been taken by now and the stream
/// does not hold it, in every sweep for min_age. One look is not enough:
/// while a silenced server's streams change leaders, a read can miss a
/// message the new leader is about to catch up on (chaos seed 14: 16
/// submissions republished while nodes still ran them from their first
/// delivery, and 3 side effects ran twice).
bool stranded_sweeper::missing_long_enough(const std::string& job_id,
                                           const lane& l, std::uint64_t seq,
                                           std::uint64_t last_seq,
                                           positions& delivered) {
  if (!message_passed(l, seq, last_seq, delivered) || still_stored(seq, job_id))
    return false;
  auto now = std::chrono::steady_clock::now();
  auto first = missing_.find(job_id);
  auto since = first == missing_.end() ? now : first->second;
  if (now - since >= min_age_)
    return true; // acted on now: forgotten, so a republished one starts over
  missing_now_[job_id] = since;
  return false;
}

void stranded_sweeper::sweep_submissions(std::uint64_t last_seq,
                                         positions& delivered, result& r) {
  if (!log_)
    return;
  if (auto n = log_->forget_claimed(10000))
    r.forgotten = *n;
  auto unclaimed = log_->unclaimed(min_age_.count(), 500);
  if (!unclaimed)
    return;
  for (const auto& s : *unclaimed) {
    if (!missing_long_enough(s.job_id, lane_of(s.pipeline, s.subject),
                             s.stream_seq, last_seq, delivered))
      continue;
    bool duplicate = false;
    auto seq = nats_->js_publish_headers(s.subject, s.body, s.job_id, {}, 5000,
                                         &duplicate);
    if (seq && !duplicate && !log_->republished(s.job_id, *seq))
      ++r.lost;
  }
}

void stranded_sweeper::sweep_queued(std::uint64_t last_seq,
                                    positions& delivered, result& r) {
  auto queued = store_.long_queued(min_age_.count(), 500);
  if (!queued)
    return;
  for (const auto& q : *queued) {
    if (!missing_long_enough(q.job_id, lane_of(q.pipeline, ""), q.stream_seq,
                             last_seq, delivered))
      continue;
    if (auto moved = store_.requeue(q); moved && *moved)
      ++r.requeued;
  }
}

/// Whether the message should have been taken by now: its consumer handed
/// out that sequence or later, or the stream does not reach it (a replica
/// that lost messages took over and numbers new ones from its own end). A
/// message still waiting in a backlog is not looked for.
bool stranded_sweeper::message_passed(const lane& l, std::uint64_t seq,
                                      std::uint64_t last_seq,
                                      positions& delivered) {
  if (seq > last_seq)
    return true;
  auto known = delivered.find(l.consumer);
  if (known == delivered.end()) {
    auto pos = consumer_position_of(*nats_, ncfg_.stream, l.consumer);
    known = delivered.emplace(l.consumer, pos ? pos->delivered : 0).first;
  }
  return seq <= known->second;
}

/// Whether the stream still holds the job's message at `seq` (a sequence
/// can be another message's after a replica lost some). If it cannot be
/// told, it counts as held.
bool stranded_sweeper::still_stored(std::uint64_t seq,
                                    const std::string& job_id) {
  auto m = stored_at(*nats_, ncfg_.stream, seq);
  if (!m)
    return true;
  if (!*m)
    return false;
  const auto& f = (*m)->fields;
  return (f.replay_of.empty() ? f.msg_id : f.replay_of) == job_id;
}

void stranded_sweeper::watch_consumers(result& r) {
  auto filter = ncfg_.prefix + ".jobs.>";
  auto before = stored_per_subject(*nats_, ncfg_.stream, filter);
  std::vector<std::pair<const lane*, consumer_position>> positions;
  for (const auto& l : lanes_)
    if (auto pos = consumer_position_of(*nats_, ncfg_.stream, l.consumer))
      positions.emplace_back(&l, *pos);
  auto after = stored_per_subject(*nats_, ncfg_.stream, filter);
  if (!before || !after)
    return;
  for (const auto& [l, pos] : positions) {
    // Messages beyond what the walk found up to the delivered sequence
    // must all be still to hand out. The fewer of two counts around the
    // consumers' reading: publications and acks meanwhile must not look
    // like a stuck consumer. (Messages behind the delivered sequence are
    // the walk's: stranded ones are published again or deleted there.)
    auto walked = walked_.find(l->consumer);
    if (walked == walked_.end())
      continue;
    auto stored = std::min((*before)[l->subject], (*after)[l->subject]);
    auto ahead = stored > walked->second ? stored - walked->second : 0;
    auto act = stuck_mend(l->consumer, ahead > pos.pending);
    if (act == mend::none)
      continue;
    if (act == mend::move) {
      ++r.stuck_consumers;
      move_leader(l->consumer, pos.pending, ahead);
    } else if (remake(l->consumer,
                      "it still counts " + std::to_string(pos.pending) +
                          " to hand out of the " + std::to_string(ahead) +
                          " ahead after its leader moved")) {
      ++r.remade_consumers;
    }
  }
}

/// What to do about `consumer`: nothing until it has been unaccounted in
/// every sweep for min_age; then move its leader; still unaccounted
/// min_age after that, make it again: nats-server 2.9.10 was seen to keep
/// a consumer's stale state through every leader move after a replica
/// reset (chaos seeds 4, 16, 19 of session 19). Each is done at most once
/// per min_age.
stranded_sweeper::mend stranded_sweeper::stuck_mend(const std::string& consumer,
                                                    bool unaccounted) {
  auto now = std::chrono::steady_clock::now();
  if (!unaccounted) {
    stuck_since_.erase(consumer);
    moved_at_.erase(consumer);
    return mend::none;
  }
  auto since = stuck_since_.emplace(consumer, now).first->second;
  if (now - since < min_age_)
    return mend::none;
  auto moved = moved_at_.find(consumer);
  if (moved == moved_at_.end()) {
    moved_at_.emplace(consumer, now);
    return mend::move;
  }
  if (now - moved->second < min_age_)
    return mend::none;
  stuck_since_.erase(consumer); // made again: it starts over
  moved_at_.erase(moved);
  return mend::remake;
}

void stranded_sweeper::move_leader(const std::string& consumer,
                                   std::uint64_t pending, std::uint64_t ahead) {
  if (auto err = step_down_consumer(*nats_, ncfg_.stream, consumer))
    spdlog::warn("sweeper: consumer {} counts {} to hand out of the {} "
                 "ahead of its delivered sequence; moving its leader "
                 "failed: {}",
                 consumer, pending, ahead, describe(err));
}

/// Makes `consumer` again (remake_consumer), at most once per min_age:
/// a consumer made again hands out every message it held back, and a new
/// delivery needs time to be taken and acked.
bool stranded_sweeper::remake(const std::string& consumer,
                              const std::string& why) {
  auto now = std::chrono::steady_clock::now();
  auto last = remade_at_.find(consumer);
  if (last != remade_at_.end() && now - last->second < min_age_)
    return false;
  remade_at_[consumer] = now;
  if (auto err = remake_consumer(*nats_, ncfg_.stream, consumer)) {
    spdlog::warn("sweeper: consumer {} is made again because {}; that "
                 "failed: {}",
                 consumer, why, describe(err));
    return false;
  }
  spdlog::warn("sweeper: consumer {} made again because {}: it hands out "
               "every message the stream holds on its subject",
               consumer, why);
  return true;
}

} // namespace troupe
