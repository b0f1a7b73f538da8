# cli_ops.cmake - CTest cases for the operator commands of `redcoll` (label "cli").
#
# Included (last) from tests/CMakeLists.txt.  Why separate from cli.cmake:
# these cases need two more programs - the example kernel plugin and a tiny
# master that checks its answer exactly (plugin_master.c) - and each case of
# test_cli_ops.sh is its own CTest test with its own redis-server
# (rc_redis_fixture), labelled `cli`, so a failure names the command that
# broke and cases run in parallel.  Binaries are passed by generator
# expression, never found on PATH.  The whole set takes well under 90 s.

add_executable(plugin_master plugin_master.c)
target_link_libraries(plugin_master PRIVATE redcoll)
target_compile_definitions(plugin_master PRIVATE _GNU_SOURCE)

# Sanitizer and -O0 builds run the pi kernel ~100x slower: the script shrinks
# its jobs (RC_CLI_SLOW=1) rather than stretching its deadlines.
set(RC_CLI_OPS_SLOW 0)
if(REDCOLL_SANITIZE OR CMAKE_BUILD_TYPE STREQUAL "Debug")
  set(RC_CLI_OPS_SLOW 1)
endif()

# rc_cli_ops_test(CASE TIMEOUT [NOREDIS] [PROCESSORS n])
function(rc_cli_ops_test case timeout)
  cmake_parse_arguments(ARG "NOREDIS" "PROCESSORS" "" ${ARGN})
  set(name cli.${case})
  add_test(NAME ${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_ops.sh ${case} $<TARGET_FILE:pi>
                   $<TARGET_FILE:redcoll-cli> $<TARGET_FILE:plugin_master> $<TARGET_FILE:plugin_example>)
  set_tests_properties(${name} PROPERTIES LABELS cli TIMEOUT ${timeout})
  set_property(TEST ${name} APPEND PROPERTY ENVIRONMENT RC_CLI_SLOW=${RC_CLI_OPS_SLOW})
  if(ARG_PROCESSORS)
    set_tests_properties(${name} PROPERTIES PROCESSORS ${ARG_PROCESSORS})
  endif()
  if(NOT ARG_NOREDIS)
    rc_redis_fixture(${name})
  endif()
endfunction()

rc_cli_ops_test(ops_inspect 120 PROCESSORS 2)
rc_cli_ops_test(ops_watch 90)
rc_cli_ops_test(ops_cancel 120)
rc_cli_ops_test(ops_authfail 90)
rc_cli_ops_test(ops_plugin 90)
rc_cli_ops_test(ops_supervisor 90)
rc_cli_ops_test(ops_supervisor_stderr_gone 90)
rc_cli_ops_test(ops_usage 90 NOREDIS)
rc_cli_ops_test(ops_stats_trimmed 60)
rc_cli_ops_test(ops_poll 60)
