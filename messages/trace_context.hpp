#pragma once

// W3C Trace Context (https://www.w3.org/TR/trace-context/): a job keeps the
// `traceparent` and `tracestate` it was submitted with, so that a trace
// started in the publishing service continues through every stage. troupe
// makes no spans of its own in a collector; it names them: the job's span
// and each attempt's span get ids derived from the job, so every node
// computes the same ones, and events and log lines carry them.

#include <cstdint>
#include <string>
#include <string_view>

namespace troupe {

/// True if `tp` is a traceparent troupe accepts: `VV-<32 hex>-<16 hex>-FF`,
/// lowercase, version not `ff`, trace and parent ids not all zeros
/// (exactly 55 characters: the fields of version 00).
bool valid_traceparent(std::string_view tp);

/// True if `ts` may be carried as tracestate: at most 512 bytes of
/// printable ASCII.
bool valid_tracestate(std::string_view ts);

/// The trace id (32 hex) of a valid traceparent, else "".
std::string trace_id_of(std::string_view traceparent);

/// A span id (16 hex, never all zeros) derived from `what` (e.g. the job id
/// and life, or the job id, life, stage and attempt): the same on every
/// node.
std::string derived_span_id(std::string_view what);

/// `00-<trace id>-<span_id>-<flags of traceparent>`: the traceparent a
/// child span (a stage attempt) passes on.
std::string child_traceparent(std::string_view traceparent,
                              std::string_view span_id);

} // namespace troupe
