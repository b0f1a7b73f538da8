# Warning and sanitizer flags shared by every redcoll target.
# -ffp-contract=off: a fused multiply-add rounds differently from mul+add, so
# allowing contraction would make results depend on the CPU path the compiler
# picked; redcoll promises the same bits on every worker.
add_compile_options(-Wall -Wextra -Wpedantic -ffp-contract=off)
# Error messages are cut to their fixed buffers on purpose; gcc's guess that
# they might be is noise, not a defect.
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  add_compile_options(-Wno-format-truncation)
endif()
if(REDCOLL_WERROR)
  add_compile_options(-Werror)
endif()
if(REDCOLL_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
