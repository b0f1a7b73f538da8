# resilience.cmake - CTest cases for the Resilience promises (label "resilience") and the chaos run (label "chaos").
#
# Included from tests/CMakeLists.txt.  Why separate from integration.cmake:
# these tests kill, stop and restart things (workers, masters, the fixture's
# redis-server itself) and take seconds each, so they are their own labels
# (`ctest -L resilience`, `ctest -L chaos`) as well as `integration`.  Each
# subtest of test_resilience is its own CTest test with its own redis-server
# (rc_redis_fixture), so a failure names the promise that broke.  The
# binaries under test - testworker and pi - are passed by generator
# expression.  Debug and sanitizer builds are 3-10x slower: RC_RES_SLOW=1
# then makes the tests shrink their work (chaos runs a shorter storm, the pi
# jobs fewer samples), keeping the whole set within a few minutes.

set(RC_RES_SLOW 0)
if(REDCOLL_SANITIZE OR CMAKE_BUILD_TYPE STREQUAL "Debug")
  set(RC_RES_SLOW 1)
endif()

find_package(Threads REQUIRED)

add_executable(test_resilience test_resilience.c)
target_link_libraries(test_resilience PRIVATE redcoll PkgConfig::HIREDIS Threads::Threads m)
target_compile_definitions(test_resilience PRIVATE _GNU_SOURCE)
add_dependencies(test_resilience testworker pi redcoll-cli)

add_executable(chaos chaos.c)
target_link_libraries(chaos PRIVATE redcoll PkgConfig::HIREDIS Threads::Threads m)
target_compile_definitions(chaos PRIVATE _GNU_SOURCE)
add_dependencies(chaos testworker)

# name:timeout (seconds): above the harness's 60 s deadlines, so a hang fails
# with the test's own message, not an anonymous CTest timeout
set(rc_resilience_tests
  kill9_recovery_time:90 kill9_idle_takeover:90 stall_sigstop:90 sigterm_drain_timeout:90 sigterm_twice:90
  handback_not_counted:90 result_stream_gone_keeps_tasks:90 stop_while_redis_down:90 submit_after_restart:90 idle_dead_connection:90 master_dead_connection:90 busy_dead_connection:90 master_write_epipe:90 redis_restart_aof:150 poison_crash:90
  poison_fail_always:90 failed_task_text:90 flaky_once:90 reattach:150 retention:90 retention_leftovers:90
  multiqueue_priority:90 registry:90)

foreach(entry ${rc_resilience_tests})
  string(REPLACE ":" ";" parts ${entry})
  list(GET parts 0 sub)
  list(GET parts 1 timeout)
  set(name resilience.${sub})
  add_test(NAME ${name} COMMAND test_resilience ${sub} $<TARGET_FILE:testworker> $<TARGET_FILE:pi>
           $<TARGET_FILE:redcoll-cli>)
  set_tests_properties(${name} PROPERTIES LABELS "integration;resilience" TIMEOUT ${timeout})
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT RC_RES_SLOW=${RC_RES_SLOW})
  rc_redis_fixture(${name})
endforeach()

add_test(NAME chaos.chaos COMMAND chaos chaos $<TARGET_FILE:testworker>)
set_tests_properties(chaos.chaos PROPERTIES LABELS "integration;chaos" TIMEOUT 200)
set_property(TEST chaos.chaos APPEND PROPERTY ENVIRONMENT RC_RES_SLOW=${RC_RES_SLOW})
rc_redis_fixture(chaos.chaos)
