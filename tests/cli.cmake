# cli.cmake - CTest cases that run the pi program and the redcoll tool as a user would (label "cli").
#
# Included from tests/CMakeLists.txt.  Each case of test_pi.sh / test_cli.sh
# is its own CTest test, so a failure names the promise that broke and cases
# run in parallel; the binaries under test are passed in by generator
# expression, never found on PATH.  Cases that talk to Redis get a private
# redis-server from rc_redis_fixture; the CPU-heavy ones (many workers, big
# jobs) claim both cores of a small box through PROCESSORS so their
# deadlines measure the program, not the neighbours.  The whole set takes
# well under two minutes on two cores.

# Sanitizer and -O0 builds run the pi kernel about 100x slower; the scripts
# then shrink their jobs (RC_CLI_SLOW=1) instead of the deadlines growing.
set(RC_CLI_SLOW 0)
if(REDCOLL_SANITIZE OR CMAKE_BUILD_TYPE STREQUAL "Debug")
  set(RC_CLI_SLOW 1)
endif()

# rc_cli_test(SCRIPT CASE TIMEOUT [REDIS] [PROCESSORS n])
function(rc_cli_test script case timeout)
  cmake_parse_arguments(ARG "REDIS" "PROCESSORS" "" ${ARGN})
  set(name cli.${case})
  add_test(NAME ${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${script} ${case} $<TARGET_FILE:pi> $<TARGET_FILE:redcoll-cli>)
  set_tests_properties(${name} PROPERTIES LABELS cli TIMEOUT ${timeout})
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT RC_CLI_SLOW=${RC_CLI_SLOW})
  if(ARG_PROCESSORS)
    set_tests_properties(${name} PROPERTIES PROCESSORS ${ARG_PROCESSORS})
  endif()
  if(ARG_REDIS)
    rc_redis_fixture(${name})
  endif()
endfunction()

rc_cli_test(test_pi.sh pi_bitident 180 REDIS PROCESSORS 2)
rc_cli_test(test_pi.sh pi_embedded 60 PROCESSORS 2)
rc_cli_test(test_pi.sh pi_encrypt 90 PROCESSORS 2)
rc_cli_test(test_pi.sh pi_ctrl_c 90 PROCESSORS 2)
rc_cli_test(test_pi.sh pi_kill9 60 PROCESSORS 2)
rc_cli_test(test_pi.sh pi_errors 90 REDIS)
rc_cli_test(test_pi.sh pi_linger 30 REDIS)
rc_cli_test(test_pi.sh pi_sigterm 30 REDIS)
rc_cli_test(test_pi.sh pi_stderr_gone 60 REDIS)
rc_cli_test(test_cli.sh cli_keygen 60)
rc_cli_test(test_cli.sh cli_purge 60 REDIS)
