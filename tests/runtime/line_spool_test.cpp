// The local spool under the submission log (runtime/common/line_spool.hpp):
// what append() returned for is there after the process is gone, a line cut
// short is not, and one process holds a spool at a time.

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "messages/errc.hpp"
#include "runtime/common/line_spool.hpp"

namespace troupe {
namespace {

struct spool_dir {
  std::string dir;
  spool_dir() {
    char tmpl[] = "/tmp/troupe-spool-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  ~spool_dir() { std::filesystem::remove_all(dir); }
  std::string file() const { return dir + "/s.jsonl"; }
};

TEST(LineSpool, WhatWasAppendedIsReadBackByTheNextProcess) {
  spool_dir d;
  {
    auto s = line_spool::open(d.file());
    ASSERT_TRUE(s) << describe(s.error());
    EXPECT_TRUE((*s)->lines().empty());
    ASSERT_FALSE((*s)->append("one"));
    ASSERT_FALSE((*s)->append("{\"two\": \"\\u0000\"}"));
  }
  auto again = line_spool::open(d.file());
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->lines(),
            (std::vector<std::string>{"one", "{\"two\": \"\\u0000\"}"}));
}

TEST(LineSpool, ALineCutShortByACrashIsLeftOut) {
  spool_dir d;
  {
    std::ofstream out{d.file(), std::ios::binary};
    out << "whole\nhal";
  }
  auto s = line_spool::open(d.file());
  ASSERT_TRUE(s);
  EXPECT_EQ((*s)->lines(), std::vector<std::string>{"whole"});
}

TEST(LineSpool, ARewriteKeepsOnlyWhatItIsGivenAndAppendsGoOnAfterIt) {
  spool_dir d;
  auto s = line_spool::open(d.file());
  ASSERT_TRUE(s);
  for (auto l : {"a", "b", "c"})
    ASSERT_FALSE((*s)->append(l));
  ASSERT_FALSE((*s)->rewrite({"c"}));
  ASSERT_FALSE((*s)->append("d"));
  EXPECT_EQ((*s)->lines(), (std::vector<std::string>{"c", "d"}));
  ASSERT_FALSE((*s)->rewrite({}));
  EXPECT_TRUE((*s)->lines().empty());
  EXPECT_FALSE(std::filesystem::exists(d.file() + ".new"));
}

TEST(LineSpool, OneProcessAtATimeAndTheErrorSaysWhy) {
  spool_dir d;
  auto first = line_spool::open(d.file());
  ASSERT_TRUE(first);
  auto second = line_spool::open(d.file());
  ASSERT_FALSE(second);
  EXPECT_NE(describe(second.error()).find("in use by another process"),
            std::string::npos)
      << describe(second.error());
  first->reset();
  EXPECT_TRUE(line_spool::open(d.file())) << "released with the first";
  auto nowhere = line_spool::open(d.dir + "/missing/s.jsonl");
  ASSERT_FALSE(nowhere);
  EXPECT_NE(describe(nowhere.error()).find(d.dir + "/missing/s.jsonl"),
            std::string::npos)
      << describe(nowhere.error());
}

} // namespace
} // namespace troupe
