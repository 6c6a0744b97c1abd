# Every dependency comes from Debian's packages (scripts/setup.sh installs them).

find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)

# OpenBLAS: Debian's OpenMP build (libopenblas-openmp-dev). The framework's
# own kernels use OpenMP; with the pthreads build the two thread pools spin
# against each other on every switch between a BLAS call and an OpenMP loop.
# Link libopenblas itself (not the libblas alternative) for its thread
# controls, and keep its directory in the RPATH so that the loader does not
# pick the pthreads build through the libopenblas.so.0 alternative.
set(openblas_openmp_dir /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp)
find_library(OPENBLAS_LIBRARY NAMES openblas PATHS ${openblas_openmp_dir} NO_DEFAULT_PATH)
find_library(OPENBLAS_LIBRARY NAMES openblas REQUIRED)
find_path(OPENBLAS_INCLUDE_DIR cblas.h
          PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
find_path(OPENBLAS_INCLUDE_DIR cblas.h
          PATH_SUFFIXES ${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp
                        ${CMAKE_LIBRARY_ARCHITECTURE}/openblas-pthread openblas
          REQUIRED)
add_library(topkformer_openblas INTERFACE)
target_link_libraries(topkformer_openblas INTERFACE ${OPENBLAS_LIBRARY})
target_include_directories(topkformer_openblas SYSTEM INTERFACE ${OPENBLAS_INCLUDE_DIR})
get_filename_component(openblas_library_dir ${OPENBLAS_LIBRARY} DIRECTORY)
target_link_options(topkformer_openblas INTERFACE "LINKER:-rpath,${openblas_library_dir}")
message(STATUS "OpenBLAS: ${OPENBLAS_LIBRARY}")

find_package(spdlog REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json REQUIRED)

# TOPKFORMER_CUDA: AUTO enables the CUDA backend when nvcc is found.
set(TOPKFORMER_HAVE_CUDA OFF)
if(NOT TOPKFORMER_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(TOPKFORMER_NVCC nvcc HINTS /usr/local/cuda/bin)
    if(TOPKFORMER_NVCC)
      set(CMAKE_CUDA_COMPILER ${TOPKFORMER_NVCC})
    endif()
  endif()
  if(CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_ARCHITECTURES 80 90)
    # Relaxed constexpr lets device code call constexpr functions such as the
    # Philox generator (core/rng.h).
    string(APPEND CMAKE_CUDA_FLAGS " --expt-relaxed-constexpr")
    # One CUDA runtime in every binary: the shared libcudart that CUDA::cudart
    # names, not a second, static copy among nvcc's implicit link libraries.
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    # C++20 like the host code, so kernels and their host glue share one .cu
    # file and include the framework's headers. CMake 3.25 does not know
    # nvcc 13's C++20 flag, so it is told, after enable_language (which sets
    # these variables, and whose test compilations must not ask for C++20).
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION -std=c++20)
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION -std=c++20)
    set(CMAKE_CUDA_STANDARD 20)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(TOPKFORMER_HAVE_CUDA ON)
  elseif(TOPKFORMER_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TOPKFORMER_CUDA=ON but nvcc was not found (looked on PATH and in /usr/local/cuda/bin)")
  endif()
endif()

# TOPKFORMER_MPI: AUTO enables MPI when an MPI implementation is found.
set(TOPKFORMER_HAVE_MPI OFF)
if(NOT TOPKFORMER_MPI STREQUAL "OFF")
  if(TOPKFORMER_MPI STREQUAL "ON")
    find_package(MPI REQUIRED COMPONENTS CXX)
  else()
    find_package(MPI QUIET COMPONENTS CXX)
  endif()
  if(MPI_CXX_FOUND)
    set(TOPKFORMER_HAVE_MPI ON)
  endif()
endif()
