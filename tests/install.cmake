# install.cmake - CTest case install.consumer: `cmake --install` into a temporary prefix, then an outside program built against it (label "install").
#
# Why: install rules are never exercised by building or testing in the tree,
# so they rot silently.  tests/install/test_install.sh installs this build
# tree, checks the files, soname and export list, and builds
# tests/install/consumer with find_package(redcoll) (shared and static
# imported targets) and with pkg-config, running each binary.  It needs no
# Redis.  Sanitizer builds pass their flags on so the consumer links the
# instrumented library.  About 10 s.
set(rc_install_extra_flags "")
if(REDCOLL_SANITIZE)
  set(rc_install_extra_flags "-fsanitize=address,undefined")
endif()
add_test(NAME install.consumer
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/install/test_install.sh
                 ${PROJECT_BINARY_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/install/consumer ${CMAKE_C_COMPILER}
                 ${PROJECT_VERSION} ${CMAKE_COMMAND} "${rc_install_extra_flags}")
set_tests_properties(install.consumer PROPERTIES LABELS install TIMEOUT 180)
