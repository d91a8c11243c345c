// Subjects built from free text: a job id may hold anything a client sent
// as its key, and a subject that NATS refuses breaks the connection that
// published it (a space did: the node reconnected mid-run).
#include <gtest/gtest.h>

#include "runtime/nats/nats_client.hpp"

using troupe::subject_tail;
using troupe::subjects;

TEST(subjects, PlainJobIdsAreUnchanged) {
  EXPECT_EQ(subjects{"troupe"}.events("ingest", "order-42"),
            "troupe.events.ingest.order-42");
  EXPECT_EQ(subject_tail("parent/child-1"), "parent/child-1");
  EXPECT_EQ(subject_tail("v1.2.3"), "v1.2.3");
  EXPECT_EQ(subject_tail("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(subjects, WhatNatsRefusesInASubjectBecomesUnderscores) {
  EXPECT_EQ(subject_tail("a b\tc\r\nd"), "a_b_c__d");
  EXPECT_EQ(subject_tail(std::string{"nul\0x", 5}), "nul_x");
  EXPECT_EQ(subject_tail("all*>"), "all__");
  EXPECT_EQ(subject_tail(".lead"), "_lead");
  EXPECT_EQ(subject_tail("trail."), "trail_");
  EXPECT_EQ(subject_tail("a..b"), "a._b");
  EXPECT_EQ(subject_tail("..."), "_._");
  EXPECT_EQ(subject_tail(""), "_");
  EXPECT_EQ(subject_tail("<img src=x onerror=\"1\">"),
            "<img_src=x_onerror=\"1\"_");
}
