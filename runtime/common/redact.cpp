// Hiding credentials in URLs, DSNs and error texts before they are logged
// or answered.
#include "runtime/common/redact.hpp"

#include <cstring>
#include <vector>

namespace troupe {

namespace {

/// Credential values in a URL or a libpq key=value DSN: the password of
/// `scheme://user:password@`, a NATS token (`nats://TOKEN@host`: user
/// info without a colon), and values of password-like parameters
/// (`?password=`, `&sslpassword=`, `password=... ` in a DSN).
std::vector<std::string> secrets_of(const std::string& url) {
  std::vector<std::string> out;
  auto scheme = url.find("://");
  auto at = url.find('@');
  if (scheme != std::string::npos && at != std::string::npos && at > scheme &&
      url.find('/', scheme + 3) > at) {
    auto info = url.substr(scheme + 3, at - scheme - 3);
    auto colon = info.find(':');
    bool nats_like = url.compare(0, 4, "nats") == 0 ||
                     url.compare(0, 3, "tls") == 0 ||
                     url.compare(0, 2, "ws") == 0;
    if (colon != std::string::npos)
      out.push_back(info.substr(colon + 1));
    else if (nats_like)
      out.push_back(info);
  }
  for (auto key :
       {"password=", "sslpassword=", "passwd=", "token=", "secret="}) {
    for (auto p = url.find(key); p != std::string::npos;
         p = url.find(key, p + 1)) {
      if (p > 0 && std::string{"?&; \t"}.find(url[p - 1]) == std::string::npos)
        continue;
      auto v = p + std::strlen(key);
      bool quoted = v < url.size() && url[v] == '\'';
      auto stop = quoted ? url.find('\'', v + 1) : url.find_first_of("&; ,", v);
      auto begin = quoted ? v + 1 : v;
      out.push_back(url.substr(
          begin, (stop == std::string::npos ? url.size() : stop) - begin));
    }
  }
  return out;
}

std::string redact_one_url(std::string url) {
  for (auto& secret : secrets_of(url))
    for (std::size_t p;
         !secret.empty() && (p = url.find(secret)) != std::string::npos;)
      url.replace(p, secret.size(), "***");
  return url;
}

} // namespace

std::string redact_url(const std::string& url) {
  // A NATS cluster is a comma-separated list: each URL may carry a password.
  std::string out;
  std::size_t start = 0;
  for (;;) {
    auto comma = url.find(',', start);
    out += redact_one_url(url.substr(start, comma - start));
    if (comma == std::string::npos)
      return out;
    out += ',';
    start = comma + 1;
  }
}

std::string redact_text(std::string text, const std::string& urls) {
  std::size_t start = 0;
  for (;;) {
    auto comma = urls.find(',', start);
    for (auto& pw : secrets_of(urls.substr(start, comma - start)))
      if (pw.size() >= 3) // shorter "secrets" would mangle ordinary words
        for (std::size_t p; (p = text.find(pw)) != std::string::npos;)
          text.replace(p, pw.size(), "***");
    if (comma == std::string::npos)
      return text;
    start = comma + 1;
  }
}

} // namespace troupe
