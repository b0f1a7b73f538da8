# integration.cmake - redcoll's integration tests: real redis-server, real worker processes.
#
# Why: the collectives and the fault handling are only meaningful end to end,
# so each subtest of test_collectives / test_faults is its own CTest test with
# its own redis-server (rc_redis_fixture), can run in parallel with the
# others, and is labelled `integration` (ctest -L integration).  The worker
# binary the tests spawn, testworker, is passed as the second argument.

add_executable(testworker testworker.c)
target_link_libraries(testworker PRIVATE redcoll m)
target_compile_definitions(testworker PRIVATE _GNU_SOURCE)

set(rc_integration_collectives
  scatter_gather_1m data_reuse scatterv_gatherv bcast reduce_ops reduce_float_order reduce_held_large
  many_tasks keep_outputs nonblocking deterministic_pool unknown_kernel
  kernel_error output_size_mismatch no_key_bad_args key_file_errors)
set(rc_integration_faults
  worker_join_midjob kill9_midjob stalled_worker tamper_task tamper_result
  wrong_key_worker fail_while_submitting wrong_key_while_submitting sigterm_drain linger queue_removed
  queue_removed_midjob queue_removed_unreadable
  descriptor_deleted connections_killed master_interrupt master_interrupt_submit submit_oom job_timeout
  result_lost stop_long_poll unseen_at_exit)
set(rc_integration_batching
  job_switch long_batch one_at_a_time scan_once nolapsed_forged result_stream_deleted mixed_delivery
  trim_keeps_pending trim_span deferred_in_flight prefetch prefetch_stop prefetch_large crowded_sleeper)

foreach(prog collectives faults batching)
  add_executable(test_${prog} test_${prog}.c)
  target_link_libraries(test_${prog} PRIVATE redcoll PkgConfig::HIREDIS m)
  target_compile_definitions(test_${prog} PRIVATE _GNU_SOURCE)
  add_dependencies(test_${prog} testworker)
  target_include_directories(test_${prog} PRIVATE ${PROJECT_SOURCE_DIR}/lib)
  foreach(sub ${rc_integration_${prog}})
    set(name ${prog}.${sub})
    add_test(NAME ${name} COMMAND test_${prog} ${sub} $<TARGET_FILE:testworker>)
    set_tests_properties(${name} PROPERTIES LABELS integration TIMEOUT 150)
    rc_redis_fixture(${name})
  endforeach()
endforeach()
