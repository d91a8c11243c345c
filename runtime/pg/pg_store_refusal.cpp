#include "runtime/pg/pg_store_refusal.hpp"

#include "messages/errc.hpp"

namespace troupe {

void report_not_taken(const pqxx::row& row, const store_request& req,
                      store_result& res) {
  job_state state{};
  from_string(row[1].as<std::string>(), state);
  auto pipeline = row[4].as<std::string>();
  const auto& spec = req.spec;
  bool waiting = row[5].as<bool>();
  auto gen = row[6].as<std::int32_t>();
  if (!is_terminal(state) && pipeline == spec.pipeline && waiting &&
      spec.gen > gen) {
    // A scheduler's publication whose transaction has not committed (or
    // rolled back after the stream stored it): not stale. Handed back for
    // a while; by then the row is queued, or published again under the
    // same message id.
    res.code = static_cast<std::uint8_t>(errc::unavailable);
    res.message = "job '" + spec.job_id + "': publication " +
                  std::to_string(spec.gen) + " is not recorded yet";
    return;
  }
  if (!is_terminal(state) && pipeline == spec.pipeline &&
      (waiting || gen > spec.gen)) {
    res.code = static_cast<std::uint8_t>(errc::superseded);
    res.message = "job '" + spec.job_id + "' " +
                  (waiting ? std::string{"waits in the store for its time"}
                           : "was published again (generation " +
                                 std::to_string(gen) + ")");
    return;
  }
  auto seq = static_cast<std::uint64_t>(row[7].as<std::int64_t>());
  if (!is_terminal(state) && pipeline == spec.pipeline && gen == 0 &&
      spec.gen == 0 && spec.replay_life <= 1 && seq != 0 &&
      spec.stream_seq != 0 && seq != spec.stream_seq) {
    // The same key published again past the duplicate window: the job
    // that key names goes on where it runs; this message is dropped.
    res.code = static_cast<std::uint8_t>(errc::superseded);
    res.message = "job '" + spec.job_id + "' was created from message " +
                  std::to_string(seq) + "; message " +
                  std::to_string(spec.stream_seq) + " publishes its key again";
    return;
  }
  if (pipeline == spec.pipeline && row[8].as<bool>()) {
    // Another process runs it under a live lease: this delivery is left to
    // the broker (its holder's acks settle the message), not acked.
    res.code = static_cast<std::uint8_t>(errc::stale_epoch);
    res.message = "job '" + spec.job_id + "' runs on " +
                  row[9].as<std::string>() + " under a live lease";
    return;
  }
  if (is_terminal(state) && pipeline == spec.pipeline) {
    res.snapshot.spec.job_id = spec.job_id;
    res.snapshot.state = state;
    res.snapshot.epoch = row[2].as<std::int64_t>();
    res.snapshot.life = row[3].as<std::int32_t>();
    return;
  }
  auto life = row[3].as<std::int32_t>();
  if (pipeline == spec.pipeline &&
      (spec.replay_life <= 1 || life == spec.replay_life)) {
    // Nothing above explains it: the row changed between the claim and this
    // read (a holder's lease released or lapsed meanwhile). Not this
    // delivery's fault: handed back to be tried again.
    res.code = static_cast<std::uint8_t>(errc::unavailable);
    res.message = "job '" + spec.job_id + "' changed while it was claimed";
    return;
  }
  res.code = static_cast<std::uint8_t>(errc::conflict);
  res.message = pipeline != spec.pipeline
                    ? "job '" + spec.job_id + "' belongs to pipeline '" +
                          pipeline + "', not '" + spec.pipeline + "'"
                    : "replay of job '" + spec.job_id + "' names life " +
                          std::to_string(spec.replay_life) +
                          ", the job is in life " + std::to_string(life);
}

} // namespace troupe
