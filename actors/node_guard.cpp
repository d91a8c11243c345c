#include "actors/node_guard.hpp"

#include <map>
#include <vector>

#include <caf/all.hpp>

#include "actors/atoms.hpp"

namespace troupe {

namespace {

struct guard_state {
  node_guard_deps deps;
  std::map<caf::actor_addr, std::string> watched;
  std::vector<std::string> died;
  bool standing_down = false;
};

void on_down(caf::stateful_actor<guard_state>* self, const caf::down_msg& msg) {
  auto& st = self->state;
  auto it = st.watched.find(msg.source);
  if (it == st.watched.end())
    return;
  auto name = it->second;
  st.watched.erase(it);
  if (st.standing_down)
    return;
  st.died.push_back(name);
  if (st.deps.escalate)
    st.deps.escalate(name, msg.reason);
}

caf::behavior node_guard(caf::stateful_actor<guard_state>* self,
                         node_guard_deps deps) {
  self->state.deps = std::move(deps);
  self->set_down_handler(
      [self](const caf::down_msg& msg) { on_down(self, msg); });
  return {
      [self](guard_watch_atom, const std::string& name, const caf::actor& a) {
        if (!a)
          return;
        self->state.watched.emplace(a.address(), name);
        self->monitor(a);
      },
      [self](guard_stand_down_atom) { self->state.standing_down = true; },
      [self](get_atom) { return self->state.died; },
  };
}

} // namespace

caf::actor spawn_node_guard(caf::actor_system& sys, node_guard_deps deps) {
  return sys.spawn(node_guard, std::move(deps));
}

} // namespace troupe
