# Every dependency comes from Debian's packages (scripts/setup.sh installs them).

find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)

# OpenBLAS: link libopenblas itself (not the libblas alternative) so that its
# threading controls (openblas_set_num_threads) are available.
find_library(OPENBLAS_LIBRARY NAMES openblas REQUIRED)
find_path(OPENBLAS_INCLUDE_DIR cblas.h
          PATH_SUFFIXES x86_64-linux-gnu/openblas-pthread openblas-pthread openblas
          REQUIRED)
add_library(topkformer_openblas INTERFACE)
target_link_libraries(topkformer_openblas INTERFACE ${OPENBLAS_LIBRARY})
target_include_directories(topkformer_openblas SYSTEM INTERFACE ${OPENBLAS_INCLUDE_DIR})

find_package(spdlog REQUIRED)
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
    set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no C++20 dialect flag for nvcc 13
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
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
