# run_regress.cmake - replays every file of some directories through one fuzz target, once (fuzz-regress tests).
#
# Why: a crash libFuzzer found is saved under tests/fuzz/crashes/<target>/ and
# must keep passing once fixed, and the seeds must keep running clean.  Given
# files (not directories), a libFuzzer binary runs each once and exits
# non-zero on the first crash or hang (-timeout=10); the files are listed
# here, at test time, so a newly saved crash is picked up without re-running
# cmake.  README files are skipped.  Usage: cmake -DFUZZER=<binary> "-DDIRS=<dir>|<dir>" -P run_regress.cmake
# ('|' separates directories: a ';' does not survive add_test quoting).
if(NOT FUZZER OR NOT DIRS)
  message(FATAL_ERROR "usage: cmake -DFUZZER=<binary> -DDIRS=<dir>|<dir> -P run_regress.cmake")
endif()
string(REPLACE "|" ";" DIRS "${DIRS}")
set(inputs)
foreach(d ${DIRS})
  file(GLOB files LIST_DIRECTORIES false ${d}/*)
  foreach(f ${files})
    get_filename_component(name ${f} NAME)
    if(NOT name MATCHES "^README")
      list(APPEND inputs ${f})
    endif()
  endforeach()
endforeach()
list(SORT inputs)
list(LENGTH inputs n)
if(n EQUAL 0)
  message(STATUS "no inputs to replay")
  return()
endif()
message(STATUS "replaying ${n} input(s) through ${FUZZER}")
execute_process(COMMAND ${FUZZER} -timeout=10 ${inputs} RESULT_VARIABLE rv)
if(NOT rv EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${rv}) on one of the inputs above")
endif()
message(STATUS "all ${n} input(s) ran clean")
