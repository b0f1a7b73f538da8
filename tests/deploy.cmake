# deploy.cmake - CTest cases for deploy/: systemd unit, cloud-init user-data, spot watcher, and the unit's command line run for real (label "deploy").
#
# Why: the files in deploy/ run on machines CI does not have (systemd as
# PID 1, cloud-init on EC2), so test_deploy.sh checks each the closest way
# possible here without installing anything; one case per check so a failure
# names it.  A case whose tool is missing (systemd-analyze, python3 with
# PyYAML) reports itself skipped (exit 77).  worker_run starts real workers
# with the unit's ExecStart and the user-data's worker.env against a private
# redis-server.  All together about 10 s.
foreach(case unit_verify unit_execstart cloud_init spot_watch worker_run)
  add_test(NAME deploy.${case}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_deploy.sh ${case} ${PROJECT_SOURCE_DIR}
                   $<TARGET_FILE:pi> $<TARGET_FILE:redcoll-cli>)
  set_tests_properties(deploy.${case} PROPERTIES LABELS deploy TIMEOUT 60 SKIP_RETURN_CODE 77)
endforeach()
rc_redis_fixture(deploy.worker_run)
