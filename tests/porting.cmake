# porting.cmake - CTest cases for the ports in docs/porting-from-mpi.md: each redcoll port against its serial reference (label "porting").
#
# Why: the porting guide promises that a port computes exactly what the
# serial code computes when the serial code adds in the same (rank) order.
# Each apps/port_*.c has a --check mode that starts the embedded default
# (private redis-server, 2 local workers), runs its job(s), repeats the
# computation serially in-process and requires bitwise equality.  k-means is
# checked twice: data scattered once and stored in Redis across iterations
# (rc_data_scatterv), and scattered again with every job.  A few seconds each.
foreach(case pi scatter kmeans)
  add_test(NAME porting.${case} COMMAND port_${case} --check)
  set_tests_properties(porting.${case} PROPERTIES LABELS porting TIMEOUT 90)
endforeach()
add_test(NAME porting.kmeans_rescatter COMMAND port_kmeans --check --rescatter)
set_tests_properties(porting.kmeans_rescatter PROPERTIES LABELS porting TIMEOUT 90)
