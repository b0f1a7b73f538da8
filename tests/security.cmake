# security.cmake - CTest cases for redcoll's security promises (labels "integration;security").
#
# Included from tests/CMakeLists.txt.  Why separate: these tests play an
# attacker who can write to Redis but lacks the key (test_security.c), and
# check --encrypt, key rotation, authenticated control markers, Redis
# passwords/ACL users and TLS through stunnel (test_tls.sh).  Each case is its
# own CTest test with its own redis-server (rc_redis_fixture), so a failure
# names the promise that broke, and the cases may change the server freely
# (requirepass, ACL users).  Debug and sanitizer builds are several times
# slower: RC_SEC_SLOW=1 / RC_CLI_SLOW=1 then make the jobs smaller, as
# cli.cmake does, so the set stays well under two minutes on two cores.

set(RC_SEC_SLOW 0)
if(REDCOLL_SANITIZE OR CMAKE_BUILD_TYPE STREQUAL "Debug")
  set(RC_SEC_SLOW 1)
endif()

add_executable(test_security test_security.c)
target_link_libraries(test_security PRIVATE redcoll PkgConfig::HIREDIS PkgConfig::SODIUM m)
target_compile_definitions(test_security PRIVATE _GNU_SOURCE)
add_dependencies(test_security testworker redcoll-cli)

# name:timeout (seconds; the tests poll against their own deadlines first)
set(rc_security_tests
  attacker:150 encrypt_on_wire:60 key_rotation:90 control_markers:90 redis_auth:60
  removal_replay:60 descriptor_churn:60 poison_entry:60 packed_results:60 lost_task:90 forged_attempts:60)

foreach(entry ${rc_security_tests})
  string(REPLACE ":" ";" parts ${entry})
  list(GET parts 0 sub)
  list(GET parts 1 timeout)
  set(name security.${sub})
  add_test(NAME ${name} COMMAND test_security ${sub} $<TARGET_FILE:testworker> $<TARGET_FILE:redcoll-cli>)
  set_tests_properties(${name} PROPERTIES LABELS "integration;security" TIMEOUT ${timeout})
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT RC_SEC_SLOW=${RC_SEC_SLOW})
  rc_redis_fixture(${name})
endforeach()

# TLS through stunnel (Debian's hiredis 0.14 has no SSL): the recipe at the
# top of test_tls.sh, run for real on loopback.  Exit 77 (skipped) when
# stunnel is not installed; scripts/deps.sh installs stunnel4.
set(RC_CLI_SLOW_SEC 0)
if(REDCOLL_SANITIZE OR CMAKE_BUILD_TYPE STREQUAL "Debug")
  set(RC_CLI_SLOW_SEC 1)
endif()
add_test(NAME security.tls
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_tls.sh tls $<TARGET_FILE:pi> $<TARGET_FILE:redcoll-cli>)
set_tests_properties(security.tls PROPERTIES LABELS "integration;security;cli" TIMEOUT 90 SKIP_RETURN_CODE 77)
set_property(TEST security.tls APPEND PROPERTY ENVIRONMENT RC_CLI_SLOW=${RC_CLI_SLOW_SEC})
rc_redis_fixture(security.tls)
