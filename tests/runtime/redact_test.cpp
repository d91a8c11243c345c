// Secrets in URLs and DSNs never reach a log line, an error or /readyz.
#include <gtest/gtest.h>

#include "runtime/nats/nats_client.hpp"
#include "runtime/shell/shell_format.hpp"

using namespace troupe;

TEST(redact, APasswordInAUrlIsHidden) {
  EXPECT_EQ(redact_url("nats://node:s3cret@h:4222"), "nats://node:***@h:4222");
  EXPECT_EQ(redact_url("postgresql://u:pw123@db/troupe"),
            "postgresql://u:***@db/troupe");
  EXPECT_EQ(redact_url("postgresql://u@db/troupe"), "postgresql://u@db/troupe");
}

// Hole 8: a NATS token in the user part was printed as it was.
TEST(redact, ANatsTokenIsHidden) {
  EXPECT_EQ(redact_url("nats://tok-998877@h:4222,nats://tok-998877@g:4222"),
            "nats://***@h:4222,nats://***@g:4222");
}

// Hole 8: `?password=` and libpq key=value DSNs were printed as they were.
TEST(redact, PasswordParametersAreHidden) {
  EXPECT_EQ(redact_url("postgresql://u@db/troupe?sslmode=require&password=pw9"
                       "&application_name=x"),
            "postgresql://u@db/troupe?sslmode=require&password=***"
            "&application_name=x");
  EXPECT_EQ(redact_url("host=db password='a b c' dbname=troupe"),
            "host=db password='***' dbname=troupe");
  EXPECT_EQ(redact_url("host=db password=abc123 dbname=troupe"),
            "host=db password=*** dbname=troupe");
  auto text = redact_text("cannot connect: password=abc123 rejected",
                          "host=db password=abc123");
  EXPECT_EQ(text.find("abc123"), std::string::npos) << text;
}

// Hole 8: the shell printed publisher-controlled text (errors, tenants,
// job ids) with its terminal control sequences.
TEST(printable, ControlSequencesFromOutsideAreDefused) {
  EXPECT_EQ(printable("job\x1b]0;owned\x07-1"), "job?]0;owned?-1");
  EXPECT_EQ(printable("a\x1b[2Jb\rc\x7f"), "a?[2Jb?c?");
  EXPECT_EQ(printable("\xc2\x9b"
                      "31m"),
            "?31m"); // C1 CSI
  EXPECT_EQ(printable("\x1b[1;31mred\x1b[0m\n"), "\x1b[1;31mred\x1b[0m\n");
  EXPECT_EQ(printable("tab\there é"), "tab here é");
}
