#include "runtime/event_publisher.hpp"

#include <caf/all.hpp>

#include "messages/json_codec.hpp"

namespace troupe {

caf::actor spawn_event_publisher(caf::actor_system& sys,
                                 std::shared_ptr<nats_client> nats,
                                 subjects subj) {
  return sys.spawn([nats, subj](caf::event_based_actor*) -> caf::behavior {
    return {
        [nats, subj](const job_event& ev) {
          auto body = encode_event(ev);
          // Publishing is a buffered write into nats.c: it never blocks on
          // the network, so it is fine on a scheduler thread.
          nats->publish(subj.events(ev.pipeline, ev.job_id), body);
          if (ev.type == "job.dead_lettered")
            nats->publish(subj.dlq(ev.pipeline), body);
        },
    };
  });
}

} // namespace troupe
