# memcheck.cmake - valgrind memcheck of the release build (label memcheck).
# Not with the sanitizers: valgrind and ASan cannot share a process.
find_program(VALGRIND valgrind)
if(VALGRIND AND NOT REDCOLL_SANITIZE)
  foreach(case wire resp ops pi example)
    add_test(NAME memcheck.${case}
             COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_memcheck.sh ${case} ${PROJECT_BINARY_DIR})
    set_tests_properties(memcheck.${case} PROPERTIES LABELS memcheck TIMEOUT 400)
  endforeach()
endif()
