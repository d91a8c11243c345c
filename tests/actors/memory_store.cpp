#include "memory_store.hpp"

#include <caf/all.hpp>

#include "actors/atoms.hpp"
#include "messages/errc.hpp"

namespace troupe::test {

void memory_db::replay(const std::string& job_id, std::int32_t from_stage) {
  auto& row = jobs[job_id];
  ++row.life;
  row.start_stage = from_stage;
  row.state = job_state::queued;
  for (auto i = row.checkpoints.begin(); i != row.checkpoints.end();)
    i = i->first >= from_stage ? row.checkpoints.erase(i) : std::next(i);
}

std::int32_t memory_db::publish_due(const std::string& job_id) {
  auto& row = jobs.at(job_id);
  row.run_at_ms = 0;
  row.state = job_state::queued;
  return ++row.gen;
}

void memory_db::release(const std::string& job_id) {
  auto i = jobs.find(job_id);
  if (i != jobs.end() && (i->second.state == job_state::running ||
                          i->second.state == job_state::retrying)) {
    i->second.state = job_state::queued;
    ++i->second.epoch;
  }
}

job_write answer_releases_write() {
  job_write w;
  w.release = true; // and no job id
  return w;
}

bool memory_db::complete(const std::string& job_id, const std::string& token,
                         const std::string& completion) {
  auto i = jobs.find(job_id);
  if (i == jobs.end() || i->second.state != job_state::waiting ||
      token.empty() || i->second.callback_token != token ||
      i->second.callback.find("\"completion\"") != std::string::npos)
    return false;
  auto& rec = i->second.callback;
  rec.pop_back();
  rec += ",\"completion\":" + completion + "}";
  return true;
}

store_actor spawn_memory_store(caf::actor_system& sys,
                               std::shared_ptr<memory_db> db) {
  return sys.spawn([db](store_actor::pointer self)
                       -> store_actor::behavior_type {
    return {
        [db](claim_atom, job_spec& spec) -> caf::result<job_snapshot> {
          auto [i, created] = db->jobs.try_emplace(spec.job_id);
          auto& row = i->second;
          if (!created && !row.spec.pipeline.empty() &&
              row.spec.pipeline != spec.pipeline)
            return make_error(errc::conflict, "job of another pipeline");
          if (created)
            row.spec = spec;
          bool replay = spec.replay_life > 1 && spec.replay_life == row.life;
          if (!created && !is_terminal(row.state) && row.run_at_ms != 0 &&
              spec.gen > row.gen)
            return make_error(errc::unavailable, "publication not recorded");
          if (!created && !is_terminal(row.state) &&
              (row.run_at_ms != 0 || (spec.gen < row.gen && !replay)))
            return make_error(errc::superseded, "waits in the store");
          ++row.claims;
          job_snapshot snap;
          snap.spec = row.spec;
          snap.state = row.state;
          snap.created = created;
          if (!is_terminal(row.state)) {
            ++row.epoch;
            row.state = job_state::running;
            snap.state = row.state;
          }
          snap.epoch = row.epoch;
          snap.life = row.life;
          snap.start_stage = row.start_stage;
          for (auto& kv : row.checkpoints)
            snap.checkpoints.push_back(kv.second);
          snap.attempts = row.attempts;
          snap.progress = row.progress;
          snap.callback = row.callback;
          if (db->lose_next_claim_replies > 0) {
            --db->lose_next_claim_replies;
            return make_error(errc::unavailable,
                              "connection lost after the commit (injected)");
          }
          return snap;
        },
        [db, self](job_write& w) -> caf::result<ok_atom> {
          if (db->fail_next_writes > 0) {
            --db->fail_next_writes;
            return make_error(errc::unavailable, "store is down (injected)");
          }
          if (db->refuse_next_writes > 0) {
            --db->refuse_next_writes;
            return make_error(errc::unstorable, "invalid input (injected)");
          }
          auto i = db->jobs.find(w.job_id);
          if (w.release && w.job_id.empty()) {
            auto held = std::move(db->held_releases);
            db->held_releases.clear();
            for (auto& [job_id, rp] : held) {
              db->release(job_id);
              rp.deliver(ok_atom::value);
            }
            return ok_atom::value;
          }
          if (w.release) {
            ++db->releases;
            if (db->hold_releases) {
              auto rp = self->make_response_promise<ok_atom>();
              db->held_releases.emplace_back(w.job_id, rp);
              return rp;
            }
            db->release(w.job_id);
            return ok_atom::value;
          }
          if (w.create) {
            if (i != db->jobs.end())
              return make_error(errc::job_exists, w.job_id);
            i = db->jobs.emplace(w.job_id, job_row{}).first;
            i->second.spec = w.spec;
            i->second.epoch = w.epoch = 1;
            ++db->creates;
          }
          if (i == db->jobs.end())
            return make_error(errc::unknown_job, w.job_id);
          auto& row = i->second;
          if (row.epoch != w.epoch)
            return make_error(errc::stale_epoch, "epoch moved on");
          ++db->writes;
          row.state = w.state;
          row.stage_index = w.stage_index;
          row.next_attempt_at_ms = w.next_attempt_at_ms;
          row.run_at_ms = w.wait_in_store ? w.next_attempt_at_ms : 0;
          if (!w.last_error.empty())
            row.last_error = w.last_error;
          if (!w.result.empty())
            row.result = w.result;
          if (!w.progress.empty())
            row.progress = w.progress;
          if (w.state == job_state::waiting) {
            row.callback_token = w.callback_token;
            row.callback =
                "{\"stage_index\":" + std::to_string(w.stage_index) +
                ",\"life\":" + std::to_string(row.life) +
                ",\"attempt\":" + std::to_string(w.attempt) +
                ",\"since_ms\":" + std::to_string(w.callback_since_ms) +
                ",\"deadline_ms\":" + std::to_string(w.next_attempt_at_ms) +
                "}";
          }
          for (auto& cp : w.checkpoints)
            row.checkpoints[cp.stage_index] = cp;
          for (auto& a : w.attempts)
            row.attempts.push_back(a);
          for (auto& ev : w.events)
            row.events.push_back(ev);
          return ok_atom::value;
        },
    };
  });
}

caf::actor spawn_event_collector(caf::actor_system& sys,
                                 std::shared_ptr<std::vector<job_event>> out) {
  return sys.spawn([out](caf::event_based_actor*) -> caf::behavior {
    return {
        [out](job_event& ev) { out->push_back(std::move(ev)); },
        [out](std::vector<job_event>& evs) {
          for (auto& ev : evs)
            out->push_back(std::move(ev));
        },
    };
  });
}

caf::actor
spawn_intake_collector(caf::actor_system& sys,
                       std::shared_ptr<std::vector<finished_delivery>> out) {
  return sys.spawn([out](caf::event_based_actor*) -> caf::behavior {
    return {[out](finished_atom, std::uint64_t d, job_result& r) {
      out->push_back({d, std::move(r)});
    }};
  });
}

} // namespace troupe::test
