# The reference engine (native/engine): a Llama-architecture decoder whose
# attention runs on the data plane's paged KV blocks. Plain C++17 in the
# static library cachesage_engine, linked into the addon (with its binding
# native/napi/engine_wrap.cpp) and into the standalone test program
# build/bin/cachesage_engine_test.
#
# Dense products go through CBLAS when OpenBLAS is found (Debian:
# libopenblas-dev) and through plain threaded loops otherwise, so the build
# never needs it. -DCACHESAGE_BLAS=OFF leaves it out (a binary that must not
# depend on libopenblas at run time, such as a prebuild).
option(CACHESAGE_BLAS "Use OpenBLAS for the engine's dense products when found" ON)

add_library(cachesage_engine STATIC
  native/engine/attention.cpp
  native/engine/attention_gemm.cpp
  native/engine/dense.cpp
  native/engine/engine.cpp
  native/engine/model_config.cpp
  native/engine/safetensors.cpp
  native/engine/thread_pool.cpp
  native/engine/weights.cpp)
target_include_directories(cachesage_engine PUBLIC native/engine)
target_compile_options(cachesage_engine PRIVATE ${CACHESAGE_WARNINGS})
find_package(Threads REQUIRED)
target_link_libraries(cachesage_engine PUBLIC Threads::Threads)

set(CACHESAGE_ENGINE_BLAS "plain loops")
if(CACHESAGE_BLAS)
  find_library(CACHESAGE_OPENBLAS_LIBRARY NAMES openblas)
  find_path(CACHESAGE_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas x86_64-linux-gnu/openblas-pthread)
  if(CACHESAGE_OPENBLAS_LIBRARY AND CACHESAGE_CBLAS_INCLUDE_DIR)
    target_include_directories(cachesage_engine SYSTEM PRIVATE ${CACHESAGE_CBLAS_INCLUDE_DIR})
    target_compile_definitions(cachesage_engine PRIVATE CACHESAGE_HAVE_CBLAS)
    target_link_libraries(cachesage_engine PUBLIC ${CACHESAGE_OPENBLAS_LIBRARY})
    set(CACHESAGE_ENGINE_BLAS "${CACHESAGE_OPENBLAS_LIBRARY}")
  endif()
endif()
message(STATUS "cachesage: engine dense products use ${CACHESAGE_ENGINE_BLAS}")

# Every kernel against its oracle and the paged decoder against the dense
# one on random shapes; [seed] repeats a run.
add_executable(cachesage_engine_test native/engine/test/engine_test.cpp)
target_compile_options(cachesage_engine_test PRIVATE ${CACHESAGE_WARNINGS})
target_link_libraries(cachesage_engine_test PRIVATE cachesage_engine)
cachesage_output_to_bin(cachesage_engine_test)

if(CMAKE_JS_VERSION)
  target_sources(cachesage_native PRIVATE native/napi/engine_wrap.cpp)
  target_link_libraries(cachesage_native PRIVATE cachesage_engine)
endif()
