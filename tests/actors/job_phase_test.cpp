#include "actors/job_phase.hpp"

#include <utility>
#include <vector>

#include <gtest/gtest.h>

using namespace troupe;

namespace {

constexpr job_phase all_phases[] = {job_phase::starting,
                                    job_phase::claiming,
                                    job_phase::waiting_for_slot,
                                    job_phase::running,
                                    job_phase::committing,
                                    job_phase::backing_off,
                                    job_phase::handing_to_store,
                                    job_phase::finishing,
                                    job_phase::done};

using move = std::pair<job_phase, job_phase>;

} // namespace

TEST(JobPhase, TheLifeOfAJobIsAllowed) {
  using p = job_phase;
  // claim, two stages (the first retried once), success.
  std::vector<move> moves = {{p::starting, p::claiming},
                             {p::claiming, p::running},
                             {p::running, p::backing_off},
                             {p::backing_off, p::running},
                             {p::running, p::committing},
                             {p::committing, p::waiting_for_slot},
                             {p::waiting_for_slot, p::running},
                             {p::running, p::finishing},
                             {p::finishing, p::done}};
  for (auto [from, to] : moves)
    EXPECT_TRUE(may_enter(from, to))
        << to_string(from) << " -> " << to_string(to);
}

TEST(JobPhase, SpeculationCancelsAndTheUnexpectedAreAllowed) {
  using p = job_phase;
  std::vector<move> moves = {
      {p::starting, p::running},             // speculate: run before the claim
      {p::running, p::running},              // a speculating job's next stage
      {p::running, p::waiting_for_slot},     // ... queued for its slot
      {p::starting, p::finishing},           // record undecodable input
      {p::claiming, p::finishing},           // claimed with a cancel pending
      {p::backing_off, p::finishing},        // cancelled while waiting
      {p::waiting_for_slot, p::backing_off}, // failed before it began
      {p::committing, p::finishing},         // cancelled during a checkpoint
      {p::running, p::claiming},             // the created job existed
      {p::finishing, p::claiming},           // ... found by the terminal write
      {p::finishing, p::finishing},          // a refused write dead-letters
      {p::claiming, p::done},                // terminal, conflict, store down
      {p::backing_off, p::done},             // parked
      {p::running, p::handing_to_store},     // a callback stage waits
      {p::handing_to_store, p::finishing},   // cancelled meanwhile
      {p::handing_to_store, p::claiming},    // the created job existed
      {p::handing_to_store, p::done}};       // the store holds it
  for (auto [from, to] : moves)
    EXPECT_TRUE(may_enter(from, to))
        << to_string(from) << " -> " << to_string(to);
}

TEST(JobPhase, EveryPhaseButDoneCanBeGivenUp) {
  for (auto from : all_phases)
    EXPECT_EQ(may_enter(from, job_phase::done), from != job_phase::done)
        << to_string(from);
}

TEST(JobPhase, NothingLeavesDoneOrReturnsToStarting) {
  for (auto x : all_phases) {
    EXPECT_FALSE(may_enter(job_phase::done, x)) << to_string(x);
    EXPECT_FALSE(may_enter(x, job_phase::starting)) << to_string(x);
  }
}

TEST(JobPhase, ImpossibleMovesAreRefused) {
  using p = job_phase;
  std::vector<move> moves = {
      {p::claiming, p::committing},  // nothing ran, nothing to checkpoint
      {p::claiming, p::backing_off}, // nothing ran, nothing failed
      {p::claiming, p::claiming},    // one claim at a time
      {p::starting, p::committing},
      {p::starting, p::backing_off},
      {p::committing, p::committing},   // one checkpoint per stage
      {p::committing, p::backing_off},  // a checkpoint is not a failure
      {p::backing_off, p::backing_off}, // one wait per failure
      {p::backing_off, p::committing},
      {p::finishing, p::running}, // a terminal write is final
      {p::finishing, p::waiting_for_slot},
      {p::finishing, p::committing},
      {p::finishing, p::backing_off},
      {p::handing_to_store, p::running}, // only the store resumes it
      {p::handing_to_store, p::backing_off},
      {p::claiming, p::handing_to_store}};
  for (auto [from, to] : moves)
    EXPECT_FALSE(may_enter(from, to))
        << to_string(from) << " -> " << to_string(to);
}

TEST(JobPhase, OnlyWaitingForASlotAndRunningHaveALiveAttempt) {
  for (auto x : all_phases)
    EXPECT_EQ(attempt_alive(x),
              x == job_phase::waiting_for_slot || x == job_phase::running)
        << to_string(x);
}

TEST(JobPhase, NamesAreDistinct) {
  for (auto a : all_phases)
    for (auto b : all_phases)
      if (a != b) {
        EXPECT_NE(to_string(a), to_string(b));
      }
}
