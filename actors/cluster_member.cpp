#include "actors/cluster_member.hpp"

#include <algorithm>
#include <map>

#include <caf/all.hpp>

#include "actors/atoms.hpp"

namespace troupe {

namespace {

using clock_type = caf::actor_clock::clock_type;

struct peer {
  heartbeat last;
  std::string state;
  clock_type::time_point last_seen;
};

struct member_state {
  cluster_deps deps;
  std::map<std::string, peer> peers;
  std::int64_t seq = 0;
  bool leaving = false;

  static inline const char* name = "cluster_member";
};

using self_ptr = caf::stateful_actor<member_state>*;

member to_member(self_ptr self, const peer& p) {
  member m;
  m.last = p.last;
  m.state = p.state;
  m.silent_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    self->clock().now() - p.last_seen)
                    .count();
  return m;
}

void notify(self_ptr self, const peer& p) {
  if (self->state.deps.listener)
    self->send(self->state.deps.listener, member_atom::value,
               to_member(self, p));
}

void publish_own(self_ptr self) {
  auto& st = self->state;
  auto hb = st.deps.self;
  hb.seq = ++st.seq;
  hb.sent_at_ms = st.deps.now_ms ? st.deps.now_ms() : 0;
  if (st.deps.load)
    hb.in_flight = st.deps.load();
  if (st.deps.health)
    hb.health = st.deps.health();
  self->send(st.deps.bus, hb);
}

void check_silences(self_ptr self) {
  auto& st = self->state;
  auto now = self->clock().now();
  for (auto& [id, p] : st.peers) {
    if (p.state != "down" && now - p.last_seen >= st.deps.failure_timeout) {
      p.state = "down";
      notify(self, p);
    }
  }
}

bool same_process(const heartbeat& a, const heartbeat& b) {
  return a.host == b.host && a.pid == b.pid &&
         a.started_at_ms == b.started_at_ms;
}

caf::behavior cluster_member(self_ptr self, cluster_deps deps) {
  self->state.deps = std::move(deps);
  publish_own(self);
  self->delayed_send(self, self->state.deps.interval, tick_atom::value);
  return {
      [self](heartbeat& hb) {
        auto& st = self->state;
        if (hb.node_id == st.deps.self.node_id) {
          if (!same_process(hb, st.deps.self) && self->state.deps.listener)
            self->send(st.deps.listener, conflict_atom::value, std::move(hb));
          return; // our own echo
        }
        auto& p = st.peers[hb.node_id];
        auto old_state = p.state;
        bool restarted = !old_state.empty() && !same_process(p.last, hb);
        p.last_seen = self->clock().now();
        p.state = hb.state;
        p.last = std::move(hb);
        if (old_state != p.state || restarted)
          notify(self, p);
      },
      [self](tick_atom) {
        if (self->state.leaving)
          return;
        publish_own(self);
        check_silences(self);
        self->delayed_send(self, self->state.deps.interval, tick_atom::value);
      },
      [self](get_atom) {
        std::vector<member> out;
        auto& st = self->state;
        // Ourselves first-class in the view: operators expect to see every
        // node, including the one they ask.
        peer me;
        me.last = st.deps.self;
        me.last.seq = st.seq;
        if (st.deps.load)
          me.last.in_flight = st.deps.load();
        me.state = st.deps.self.state;
        me.last_seen = self->clock().now();
        out.push_back(to_member(self, me));
        for (auto& kv : st.peers)
          out.push_back(to_member(self, kv.second));
        std::sort(out.begin(), out.end(), [](const member& a, const member& b) {
          return a.last.node_id < b.last.node_id;
        });
        return out;
      },
      [self](state_atom, const std::string& s) {
        self->state.deps.self.state = s;
        publish_own(self); // tell the cluster at once, not at the next tick
      },
      [self](leave_atom) {
        auto& st = self->state;
        st.leaving = true;
        st.deps.self.state = "down";
        publish_own(self);
        self->quit();
      },
  };
}

} // namespace

caf::actor spawn_cluster_member(caf::actor_system& sys, cluster_deps deps) {
  return sys.spawn(cluster_member, std::move(deps));
}

} // namespace troupe
