# Sourced by scripts/qemu-vfio-check and scripts/qemu-fairnic-check (and
# .ci/run, for build_qemu_binaries).

# build_qemu_binaries [CARGO-ARGS...]: the optimized binaries both checks
# use (vfio-edu-check, nicsim, nicdrv), in the benchmarks' profile
# (target/release), in one cargo command: built alone, host-driver's
# dependencies resolve with fewer features (log, smallvec, indexmap) and
# Cranelift and the crates on it were compiled a second time for nicsim
# and nicdrv (and the benchmarks). Whichever check runs second, and
# .ci/run's build ahead of both, find it built.
build_qemu_binaries() {
  cargo build "$@" --profile bench -p host-driver --bin vfio-edu-check -p sim --bin nicsim -p nicdrv --bin nicdrv
}

# stale FILE: FILE (a cache's "ready" mark) is missing or over a week old.
stale() {
  [ ! -f "$1" ] || [ -z "$(find "$1" -mtime -7)" ]
}

# need_host PKG...: install the Debian packages that are missing.
need_host() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "$(basename "$0"): installing ${missing[*]}"
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# add_binary BIN ROOT: copy the host binary BIN to ROOT/bin with every
# shared library it loads (ldd's list, the loader included) at the same
# path under ROOT, so the guest runs the very build the host tests ran,
# with the host's libc, and no second (static) build is needed.
add_binary() {
  local bin=$1 root=$2 lib
  mkdir -p "$root/bin"
  cp "$bin" "$root/bin/"
  for lib in $(ldd "$bin" | grep -oE '/[^ ]+' ); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
