#pragma once

// Reading JSON that came from outside the node (NATS bodies, admin
// requests, stage output) without letting its shape hurt the node.
//
// nlohmann's parser builds its tree iteratively, but everything done with
// the tree afterwards — a depth check, dump(), a recursive visitor — walks
// it recursively, so ~200k levels of `[` (well under 1 MiB) overflow the
// stack. The nesting is therefore measured on the bytes, before any tree
// exists, and deep input is refused without being parsed.

#include <string>
#include <string_view>

#include <caf/expected.hpp>
#include <nlohmann/json.hpp>

namespace troupe {

/// Deepest nesting of arrays and objects in `text`, counted on its bytes
/// (brackets inside strings do not count). Stops at `limit + 1`, so the
/// cost is bounded by the input's size whatever its shape. Malformed text
/// gets a number too; the parser rejects it afterwards.
int json_nesting(std::string_view text, int limit);

/// True if a string in `text` holds U+0000 (written `\u0000`), which
/// PostgreSQL's jsonb and text columns cannot store. Raw NUL bytes are not
/// valid JSON at all and are left to the parser.
bool json_has_nul(std::string_view text);

/// Parses one JSON document from outside: refuses nesting deeper than
/// `max_depth` (errc::nesting_too_deep) before parsing, and malformed text
/// (errc::invalid_payload, with the parser's position). `what` names the
/// input in messages ("request body", "stage output").
caf::expected<nlohmann::json> parse_untrusted_json(std::string_view text,
                                                   int max_depth,
                                                   std::string_view what);

/// Like `json::parse(text, nullptr, false)`: a discarded value when `text`
/// is malformed, and also when it nests deeper than `max_depth`.
nlohmann::json parse_json_or_discarded(std::string_view text,
                                       int max_depth = 512);

/// Nesting limit for JSON that a node reads from its own peers or from
/// PostgreSQL (events, heartbeats, admin replies): generous, still finite.
constexpr int internal_json_depth = 512;

} // namespace troupe
