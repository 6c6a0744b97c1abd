#!/usr/bin/env bash
# Makes a relocatable folder of the framework for a GPU machine that has the
# NVIDIA driver and the CUDA libraries but none of the Debian packages:
#
#   bash scripts/bundle.sh [OUT_DIR]     # default: bundle/
#
#   OUT_DIR/bin/  topkformer, topkformer_tests (and the MPI test programs)
#   OUT_DIR/lib/  every shared library they load that is neither the C
#                 library's nor CUDA's (OpenBLAS, OpenMP, yaml-cpp, spdlog,
#                 fmt, SentencePiece, Open MPI, libstdc++, ...)
#
# The programs are linked with RPATH $ORIGIN/../lib (DT_RPATH, not RUNPATH,
# so that the bundled libraries find each other too), so the folder works
# wherever it is copied. CUDA's own libraries (cudart, cuBLAS, NCCL) are
# taken from the GPU machine: they must match its driver. The build is
# Release with the CUDA backend, in build-bundle/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bundle}

BUILD_DIR=build-bundle CMAKE_ARGS="-DTOPKFORMER_CUDA=ON -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON \
  -DCMAKE_INSTALL_RPATH=\$ORIGIN/../lib -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags" \
  bash scripts/setup.sh

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
programs=(build-bundle/src/topkformer build-bundle/tests/topkformer_tests)
for optional in build-bundle/tests/topkformer_mpi_tests build-bundle/tests/topkformer_failing_rank; do
  [[ -x $optional ]] && programs+=("$optional")
done
cp "${programs[@]}" "$out/bin/"

# The C library, the dynamic loader and the CUDA driver/toolkit libraries
# stay with the target machine.
system='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libresolv|libutil|libcuda|libcudart|libcublas|libcublasLt|libnccl|libnvidia)[.-]'
for program in "${programs[@]}"; do
  ldd "$program" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
done | sort -u | while read -r library; do
  name=$(basename "$library")
  [[ $name =~ $system ]] && continue
  cp -L "$library" "$out/lib/$name"
done
# Open MPI loads its components and help texts at run time; the GPU machine
# runs one rank without a launcher, which needs neither.
strip --strip-unneeded "$out"/bin/* "$out"/lib/* 2>/dev/null || true

echo "bundle: $(du -sh "$out" | cut -f1) in $out/ ($(ls "$out/lib" | wc -l) libraries)"
echo "run: $out/bin/topkformer info"
