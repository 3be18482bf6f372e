# Sourced by scripts/qemu-vfio-check and scripts/qemu-fairnic-check.

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
