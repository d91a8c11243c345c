#pragma once

// Reads a JetStream delivery out of a nats.c message; what it means is
// decided by messages/delivery.hpp.

#include <cstdint>

#include <nats/nats.h>

#include "messages/delivery.hpp"

namespace troupe {

/// Copies what decode_delivery needs out of a nats.c message.
delivery_fields read_delivery(natsMsg* m);

/// Milliseconds since the epoch (system clock).
std::int64_t now_ms();

} // namespace troupe
