#include "runtime/node/event_publisher.hpp"

#include <caf/all.hpp>

#include "messages/event_type.hpp"
#include "messages/json_codec.hpp"
#include "runtime/common/latency_probe.hpp"
#include "runtime/observe/logging.hpp"

#include <spdlog/spdlog.h>

namespace troupe {

namespace {

/// One log line per notable event, with the job's fields (never payloads).
void log_event(const job_event& ev) {
  auto level = spdlog::level::debug;
  std::string msg;
  auto type = type_of(ev);
  if (type == event_type::job_dead_lettered) {
    level = spdlog::level::warn;
    msg = "job dead-lettered";
  } else if (type == event_type::job_retrying) {
    // Retries are routine (metrics count them); problems get info and up.
    level = spdlog::level::debug;
    msg =
        "stage failed, retrying in " + std::to_string(ev.next_retry_ms) + " ms";
  } else if (type == event_type::job_waiting) {
    level = spdlog::level::info;
    msg = "callback stage waits until " + std::to_string(ev.deadline_ms);
  } else if (type == event_type::job_cancelled) {
    level = spdlog::level::info;
    msg = "job cancelled";
  } else {
    msg = ev.type;
  }
  if (!spdlog::should_log(level))
    return;
  log_fields f{{"job_id", ev.job_id},
               {"pipeline", ev.pipeline},
               {"stage", ev.stage},
               {"attempt", ev.attempt > 0 ? std::to_string(ev.attempt) : ""},
               {"node", ev.node},
               {"correlation_id", ev.correlation_id},
               {"tenant", ev.tenant},
               {"event", ev.type}};
  if (!ev.trace_id.empty()) {
    f.emplace_back("trace_id", ev.trace_id);
    f.emplace_back("span_id", ev.span_id);
  }
  if (!ev.error_code.empty())
    f.emplace_back("error_code", ev.error_code);
  if (!ev.error.empty())
    f.emplace_back("error", ev.error);
  log_with(level, msg, f);
}

/// The callback request (with its token) goes only to the callback's
/// subject, never into the event. Best effort, like events: a request that
/// cannot go out is logged, and the attempt ends at its deadline.
void send_callback_request(nats_client& nats, const subjects& subj,
                           const job_event& ev) {
  auto subject = ev.notify_subject.empty()
                     ? subj.callbacks(ev.pipeline, ev.stage)
                     : ev.notify_subject;
  if (auto err = nats.publish(subject, ev.notify_body))
    log_with(spdlog::level::warn,
             "could not send the callback request: " + describe(err),
             {{"job_id", ev.job_id},
              {"pipeline", ev.pipeline},
              {"stage", ev.stage},
              {"subject", subject}});
}

} // namespace

caf::actor spawn_event_publisher(caf::actor_system& sys,
                                 std::shared_ptr<nats_client> nats,
                                 subjects subj,
                                 std::shared_ptr<job_metrics> metrics,
                                 std::shared_ptr<span_exporter> spans) {
  auto publish = [nats, subj, metrics, spans](const job_event& ev) {
    auto body = encode_event(ev);
    // Publishing is a buffered write into nats.c: it never blocks on the
    // network, so it is fine on a scheduler thread.
    nats->publish(subj.events(ev.pipeline, ev.job_id), body);
    if (latency_probe::enabled())
      if (auto t = type_of(ev); t && is_terminal(*t))
        latency_probe::mark(ev.job_id, "events.published");
    if (type_of(ev) == event_type::job_dead_lettered)
      nats->publish(subj.dlq(ev.pipeline), body);
    if (type_of(ev) == event_type::job_waiting && !ev.notify_body.empty())
      send_callback_request(*nats, subj, ev);
    if (metrics)
      metrics->on_event(ev);
    if (spans)
      spans->on_event(ev);
    log_event(ev);
  };
  // A client waits on a job's terminal event. nats.c's flusher holds what
  // is published for up to 1 ms more (runtime/nats/prompt_flusher.hpp); so
  // once the events that arrived are out and none wait behind them, a
  // terminal one is flushed at once. Under load the mailbox seldom runs
  // dry, and nats.c's flusher sends the bursts as before.
  auto flush_if_idle = [nats](caf::event_based_actor* self, bool terminal) {
    if (terminal && self->mailbox().empty())
      nats->flush_soon();
  };
  return sys.spawn(
      [publish, flush_if_idle](caf::event_based_actor* self) -> caf::behavior {
        return {
            [=](const job_event& ev) {
              publish(ev);
              auto t = type_of(ev);
              flush_if_idle(self, t && is_terminal(*t));
            },
            [=](const std::vector<job_event>& evs) {
              bool terminal = false;
              for (const auto& ev : evs) {
                publish(ev);
                auto t = type_of(ev);
                terminal = terminal || (t && is_terminal(*t));
              }
              flush_if_idle(self, terminal);
            },
        };
      });
}

} // namespace troupe
