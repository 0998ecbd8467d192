#!/usr/bin/env bash
# The container tools and the base images the Dockerfile starts from, made on this machine from
# Debian's packages: no image registry is reachable here.
#
#   scripts/images.sh tools     podman and runc (Debian packages), set up to run as root here
#   scripts/images.sh runtime   debian:bookworm-slim, the image stage's base (the tests need it)
#   scripts/images.sh build     rust:1.95-bookworm, the build stage's base: Debian's compilers
#                               and this machine's own Rust toolchain (a full image build only)
#   scripts/images.sh dockerfile  builds the shipped Dockerfile through its last step, as a user
#                               would, without MotherDuck's extension (it needs the internet)
#
# Each step does nothing when what it makes is already there. The stand-ins are tagged with the
# names the Dockerfile uses, so it is built unchanged; a machine that reaches Docker Hub needs
# none of this.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNTIME_BASE=docker.io/library/debian:bookworm-slim
BUILD_BASE=docker.io/library/rust:1.95-bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (Debian packages)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

tools() {
  if [ "$(id -u)" != 0 ]; then
    # Images live in the storage of the user who makes them: a user's podman sees only its
    # own, so the tests must run as the user who ran this.
    for tool in podman mmdebstrap; do
      command -v "$tool" >/dev/null || {
        echo "$tool is missing: install podman, runc, uidmap and mmdebstrap (Debian packages), or run this as root" >&2
        exit 1
      }
    done
    return
  fi
  apt_install podman runc uidmap mmdebstrap debian-archive-keyring ca-certificates
  # This machine's kernel refuses the ulimits podman sets by default, and crun is not
  # installed: runc runs the containers. A drop-in, so that the machine's own settings stay.
  local conf=/etc/containers/containers.conf.d/50-kbo-import.conf
  if [ ! -f "$conf" ]; then
    mkdir -p "$(dirname "$conf")"
    printf '# scripts/images.sh\n[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' > "$conf"
  fi
}

has_image() {
  podman image exists "$1"
}

# A minimal Debian bookworm (what debian:bookworm-slim is), imported as an image.
runtime() {
  tools
  has_image "$RUNTIME_BASE" && return
  local dir
  dir="$(mktemp -d)"
  # (The trap may fire after this function returned, where `dir` is gone: hence the default.)
  trap 'rm -rf "${dir:-}"' EXIT
  # Slimmed as Docker Hub's -slim images are: no documentation, manuals or translations, and
  # apt's caches removed after each install.
  mmdebstrap --quiet --variant=minbase \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='printf "%s\n" "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true\"; };" "Dir::Cache::pkgcache \"\"; Dir::Cache::srcpkgcache \"\";" > "$1/etc/apt/apt.conf.d/docker-clean"' \
    --customize-hook='rm -f "$1"/var/cache/apt/*.bin' \
    bookworm "$dir/rootfs.tar" "$MIRROR"
  podman import --quiet --change 'CMD ["bash"]' "$dir/rootfs.tar" "$RUNTIME_BASE" >/dev/null
  rm -rf "$dir"
  trap - EXIT
  echo "made $RUNTIME_BASE from Debian's packages" >&2
}

# Debian's compilers and this machine's Rust toolchain: what the build stage uses of rust:1.95.
# The build stage reaches crates.io through this machine's certificate bundle, mounted at
# /run/host-ca by `dockerfile` below (never copied into an image).
build() {
  tools
  has_image "$BUILD_BASE" && return
  local toolchain dir
  toolchain="$(rustc +1.95.0 --print sysroot)"
  dir="$(mktemp -d)"
  # (The trap may fire after this function returned, where `dir` is gone: hence the default.)
  trap 'rm -rf "${dir:-}"' EXIT
  mmdebstrap --quiet --variant=apt --include=build-essential,ca-certificates,pkg-config,git \
    --customize-hook="cp -a '$toolchain/.' \"\$1/usr/local/rust\"" \
    bookworm "$dir/rootfs.tar" "$MIRROR"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV SSL_CERT_FILE=/run/host-ca/ca-certificates.crt' \
    --change 'ENV CARGO_HTTP_CAINFO=/run/host-ca/ca-certificates.crt' \
    --change 'CMD ["bash"]' \
    "$dir/rootfs.tar" "$BUILD_BASE" >/dev/null
  rm -rf "$dir"
  trap - EXIT
  echo "made $BUILD_BASE from Debian's packages and $toolchain" >&2
}

dockerfile() {
  runtime
  build
  local started ended
  started=$(date +%s)
  podman build --build-arg MOTHERDUCK_EXTENSION=skip \
    --volume /etc/ssl/certs:/run/host-ca:ro \
    --tag localhost/kbo-import:built .
  ended=$(date +%s)
  echo "built localhost/kbo-import:built in $((ended - started)) s;" \
    "$(podman image inspect --format '{{.Size}}' localhost/kbo-import:built) bytes" >&2
}

case "${1:-}" in
  tools) tools ;;
  runtime) runtime ;;
  build) build ;;
  dockerfile) dockerfile ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
