# Warnings, CPU target and sanitizers, applied through one interface target so
# that the library, the executable and the tests are built the same way.

add_library(topkformer_flags INTERFACE)
target_compile_options(topkformer_flags INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wno-unknown-pragmas>
  $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wshadow>)

# No code here reads floating-point exception flags, and without this GCC will
# not vectorise loops with rounding or compares (the f32 exp of the softmax and
# cross-entropy kernels, src/kernels/cpu/vector_math.h). Results are unchanged:
# unlike -ffast-math it allows no reassociation and keeps NaN and infinity.
target_compile_options(topkformer_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-fno-trapping-math>)

# Release builds run on any x86-64 CPU with AVX2 (x86-64-v3) unless the user
# asks for this machine's instruction set.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  if(TOPKFORMER_NATIVE)
    target_compile_options(topkformer_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-march=native>)
  else()
    target_compile_options(topkformer_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-march=x86-64-v3>)
  endif()
endif()

if(TOPKFORMER_SANITIZE)
  set(sanitizers -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_compile_options(topkformer_flags INTERFACE $<$<COMPILE_LANGUAGE:CXX>:${sanitizers}>)
  target_link_options(topkformer_flags INTERFACE ${sanitizers})
endif()
