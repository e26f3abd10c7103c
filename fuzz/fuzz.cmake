# ANJU_BUILD_FUZZ=ON (clang only): every library is built with libFuzzer coverage and
# AddressSanitizer + UndefinedBehaviorSanitizer, so a fuzz target sees bugs anywhere in the
# code it calls. Included from the top-level CMakeLists.txt before the modules; the
# targets themselves are in fuzz/CMakeLists.txt. See docs/fuzzing.md.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "ANJU_BUILD_FUZZ needs clang: configure with -DCMAKE_CXX_COMPILER=clang++ "
                      "-DCMAKE_C_COMPILER=clang")
endif()
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                    -fno-sanitize-recover=undefined -g)
add_link_options(-fsanitize=address,undefined)
