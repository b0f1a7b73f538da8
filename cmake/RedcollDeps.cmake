# Finds the system libraries redcoll builds on (Debian: libhiredis-dev,
# libsodium-dev, gcc's libgomp) and exposes them as imported targets.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium>=1.0.12)
find_package(OpenMP REQUIRED COMPONENTS C)
find_package(Threads REQUIRED)
message(STATUS "redcoll: hiredis ${HIREDIS_VERSION}, libsodium ${SODIUM_VERSION}, OpenMP ${OpenMP_C_VERSION}")
