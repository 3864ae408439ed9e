#!/usr/bin/env bash
# Builds the image portfolio-service:local from the Dockerfile on a machine with a Docker
# engine and no reachable registry.
#
# Nothing is pulled. The runtime base (what distroless cc gives users with a registry: glibc,
# libgcc, CA certificates, a nonroot user 65532, no shell, no package manager) is assembled from a
# debootstrap root file system of the host's Debian release and imported with `docker import`;
# the binary is compiled on the host (`cargo build --release`, symbols stripped) and handed to
# the Dockerfile's `prebuilt` stage. Everything else (user, environment, HEALTHCHECK, entry
# point) is the Dockerfile users build.
#
# Cached under ~/.cache/portfolio-service/container (PORTFOLIO_CACHE_DIR overrides the parent):
# the runtime root file system as a tarball (a few MB), re-imported when the image is missing,
# so only the first run on a machine pays for debootstrap (~1 min).
#
# Environment: IMAGE (default portfolio-service:local); SKIP_CARGO_BUILD=1 uses the binary
# already in target/release.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${IMAGE:-portfolio-service:local}"
CACHE="${PORTFOLIO_CACHE_DIR:-$HOME/.cache/portfolio-service}/container"
# Bump when the recipe of the runtime root file system changes: it names the tarball and image.
RECIPE=1
# The host's release, so the glibc in the image is the one the host-built binary linked against.
SUITE=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
RUNTIME_TAR="$CACHE/runtime-rootfs-$SUITE-r$RECIPE.tar"
RUNTIME_BASE="portfolio-service/runtime-base:$SUITE-r$RECIPE"
BINARY=target/release/portfolio-service

log() { printf '\n==> %s\n' "$*"; }
fail() { printf 'build-image: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The Debian mirror apt already uses (a registry reachable from here), else the default one.
debian_mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -E '^[[:space:]]*(deb|URIs:)[[:space:]]' | grep -oE 'https?://[^[:space:]]+' \
    | grep -E '/debian/?$' | head -n 1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

# Files of installed packages inside ROOT that belong in the runtime: shared libraries (not the
# iconv modules, which nothing here loads) and the copyright notices that go with them.
package_files() { # package_files ROOT PACKAGE...
  local root=$1; shift
  as_root chroot "$root" dpkg-query -L "$@" \
    | grep -E '\.so(\.[0-9]+)*$|/usr/share/doc/[^/]+/copyright$' | grep -v '/gconv/' | sort -u
}

# The runtime root file system in STAGE from the Debian system in ROOT. Runs as root (through
# as_root), so files keep their owners: root, and 65532 for the nonroot home.
assemble_runtime() { # assemble_runtime ROOT STAGE
  local root=$1 stage=$2 link path dir
  mkdir -p "$stage"
  # Merged /usr: /lib and /lib64 are links into /usr, as in the source system.
  for link in lib lib64; do
    if [ -L "$root/$link" ]; then cp -a "$root/$link" "$stage/"; fi
  done
  while IFS= read -r path; do
    [ -e "$root$path" ] || [ -L "$root$path" ] || continue
    [ -d "$root$path" ] && [ ! -L "$root$path" ] && continue
    # Copy to the directory's real location so the links above keep working.
    dir=$(cd "$root$(dirname "$path")" && pwd -P)
    dir=${dir#"$root"}
    mkdir -p "$stage$dir"
    cp -a "$root$path" "$stage$dir/"
  done < <(package_files "$root" libc6 libgcc-s1 ca-certificates)
  install -D -m 0644 "$root/etc/ssl/certs/ca-certificates.crt" "$stage/etc/ssl/certs/ca-certificates.crt"
  install -D -m 0644 "$root/usr/lib/os-release" "$stage/usr/lib/os-release"
  ln -s ../usr/lib/os-release "$stage/etc/os-release"
  install -m 0644 "$root/etc/nsswitch.conf" "$stage/etc/nsswitch.conf"
  printf '%s\n' root:x:0:0:root:/root:/sbin/nologin nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin \
    nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin >"$stage/etc/passwd"
  printf '%s\n' root:x:0: nobody:x:65534: nonroot:x:65532: >"$stage/etc/group"
  install -d -m 1777 "$stage/tmp"
  install -d -m 0700 -o 65532 -g 65532 "$stage/home/nonroot"
  install -d -m 0700 "$stage/root"
}

make_runtime_rootfs() {
  command -v debootstrap >/dev/null || fail "debootstrap is missing (apt-get install debootstrap)"
  local work mirror
  work=$(mktemp -d)
  mirror=$(debian_mirror)
  log "runtime base: debootstrap $SUITE from $mirror (once per machine)"
  as_root debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$work/debian" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; fail "debootstrap failed (log above)"; }
  as_root bash -c "set -euo pipefail; $(declare -f as_root package_files assemble_runtime)
    assemble_runtime '$work/debian' '$work/runtime'"
  mkdir -p "$CACHE"
  as_root tar --numeric-owner -C "$work/runtime" -cf "$RUNTIME_TAR.partial" .
  as_root chown "$(id -u):$(id -g)" "$RUNTIME_TAR.partial"
  mv "$RUNTIME_TAR.partial" "$RUNTIME_TAR"
  as_root rm -rf "$work"
  echo "runtime root file system: $(du -h "$RUNTIME_TAR" | cut -f1) in $RUNTIME_TAR"
}

ensure_runtime_base() {
  if docker image inspect "$RUNTIME_BASE" >/dev/null 2>&1; then return; fi
  [ -f "$RUNTIME_TAR" ] || make_runtime_rootfs
  log "runtime base: docker import $RUNTIME_TAR as $RUNTIME_BASE"
  docker import --message "glibc, libgcc and CA certificates from Debian $SUITE (scripts/build-image.sh)" \
    "$RUNTIME_TAR" "$RUNTIME_BASE" >/dev/null
}

# Every library the binary loads must be in the runtime base, or the container dies at exec.
check_libraries() {
  local library listing missing=()
  listing=$(tar -tf "$RUNTIME_TAR")
  while read -r library; do
    grep -qE "/${library//./\\.}\$" <<<"$listing" || missing+=("$library")
  done < <(ldd "$BINARY" | awk '/=>/ { print $1 } /^[[:space:]]*\// { n = split($1, p, "/"); print p[n] }')
  [ ${#missing[@]} -eq 0 ] || fail "libraries the binary needs are missing from the runtime base: ${missing[*]}"
}

# `docker build` with BuildKit: buildx when installed; otherwise a client older than 23 (Debian's
# docker.io) builds with the engine's built-in BuildKit when DOCKER_BUILDKIT=1.
buildkit_build() {
  if docker buildx version >/dev/null 2>&1; then docker buildx build --load "$@"; return; fi
  local client major
  for client in docker /usr/bin/docker; do
    major=$("$client" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1) || continue
    if [ -n "$major" ] && [ "$major" -lt 23 ]; then DOCKER_BUILDKIT=1 "$client" build "$@"; return; fi
  done
  fail "no BuildKit builder: install docker-buildx, or use the docker client of Debian's docker.io"
}

docker info >/dev/null 2>&1 || fail "no Docker engine answers (start dockerd)"
ensure_runtime_base

if [ -z "${SKIP_CARGO_BUILD:-}" ]; then
  log "binary: cargo build --release -p portfolio-service"
  cargo build --release --locked -p portfolio-service
fi
[ -x "$BINARY" ] || fail "$BINARY is missing"
check_libraries

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
strip --strip-all -o "$context/portfolio-service" "$BINARY"
install -d -m 0750 "$context/data"

log "image: $IMAGE (runtime base $RUNTIME_BASE, binary from the host)"
buildkit_build --quiet -f Dockerfile -t "$IMAGE" \
  --build-arg RUNTIME_IMAGE="$RUNTIME_BASE" --build-arg BINARY_FROM=prebuilt "$context" >/dev/null
size=$(docker image inspect --format '{{.Size}}' "$IMAGE")
echo "$IMAGE: $((size / 1000000)) MB ($size bytes; binary $(stat -c %s "$context/portfolio-service") bytes stripped)"
