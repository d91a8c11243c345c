#pragma once

// The JSON HTTP API of a node, `/api/v1/...` on node.http: the admin verbs
// of the shell as resources, for scripts and the dashboard. Each request
// becomes an `admin_call` to the node's admin actor (actors/admin_actor.hpp),
// so the API and the shell answer the same way; `GET /api/v1/events` is a
// live feed of the NATS events (Server-Sent Events, runtime/node/event_feed).
// docs/wire-format.md, "JSON API", lists the routes.
//
// Access: with node.api_tokens_file, every request carries
// `Authorization: Bearer <token>`; a `viewer` token may GET, an `admin`
// token may also POST (steer), and each steering request is logged with the
// token's name. Without a tokens file the API is open on a loopback address
// and refused on any other. Tokens travel in a header, never a cookie, so a
// page elsewhere cannot make a browser steer (no CSRF).

#include <map>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "actors/admin_actor.hpp"
#include "runtime/nats/nats_client.hpp"
#include "runtime/node/api_access.hpp"
#include "runtime/observe/http_endpoint.hpp"

namespace troupe {

/// Live feeds (`GET /api/v1/events`) open at once on one node; each holds
/// an HTTP thread.
constexpr int api_max_feeds = 16;

/// The handlers of /api/v1/... (http_handlers::api and ::stopping, which
/// ends the open feeds).
struct http_api_handlers {
  std::function<api_response(const api_request&)> api;
  std::function<void()> stopping;
};

http_api_handlers make_http_api(caf::actor_system& sys, admin_actor admin,
                                api_access access,
                                std::shared_ptr<nats_client> nats,
                                std::string prefix);

} // namespace troupe
