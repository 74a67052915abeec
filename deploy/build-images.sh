#!/usr/bin/env bash
# Builds the lenspipe image (deploy/Dockerfile) from binaries built on this
# host, on a machine with or without an image registry.
#
#   deploy/build-images.sh            # prints the image name as its last line
#
# Environment:
#   LENSPIPE_PROFILE     cargo profile of the binaries: release (default) or dev
#   LENSPIPE_IMAGE       image name (default lenspipe:<version>-<profile>)
#   LENSPIPE_BASE_IMAGE  a base to build on, e.g. debian:bookworm-slim where it
#                        can be pulled; unset: a base made here FROM scratch
#   CARGO_TARGET_DIR     cargo's target folder (default: ./target)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
profile=${LENSPIPE_PROFILE:-release}
case $profile in
  release) out_dir=$target/release; cargo_profile=(--release) ;;
  dev) out_dir=$target/debug; cargo_profile=() ;;
  *) echo "build-images: LENSPIPE_PROFILE must be release or dev, not '$profile'" >&2; exit 2 ;;
esac
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)
commit=$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]]; then commit="$commit-dirty"; fi
image=${LENSPIPE_IMAGE:-lenspipe:$version-$profile}
s3s_version=0.14.1

say() { echo "build-images: $*" >&2; }

# 1. The binaries. --workspace: one package alone would re-resolve features.
say "cargo build --workspace --bins (${profile})"
(cd "$repo" && cargo build -q --workspace --bins "${cargo_profile[@]}")
tools=$target/tools
if [[ ! -x $tools/bin/s3s-fs ]]; then
  say "installing s3s-fs $s3s_version (the S3-compatible store of the compose cluster) from crates.io"
  cargo install -q --locked s3s-fs --version "$s3s_version" --features binary \
    --root "$tools" --target-dir "$target/tools-build"
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin"
bins=(lenspipe lenspipe-scheduler lenspipe-executor)
for b in "${bins[@]}"; do
  # Debug info is for the host's debugger; the image needs only the code.
  objcopy --strip-debug "$out_dir/$b" "$stage/bin/$b"
done
cp "$tools/bin/s3s-fs" "$stage/bin/s3s-fs"

# 2. The base: exactly the shared libraries the binaries load, plus what a
# TLS client and a non-root user need. Tagged by content, so it is made once.
base=${LENSPIPE_BASE_IMAGE:-}
if [[ -z $base ]]; then
  root=$stage/rootfs
  mkdir -p "$root/etc/ssl/certs" "$root/tmp" "$root/srv/s3"
  chmod 1777 "$root/tmp"
  libs=$(for b in "$stage"/bin/*; do ldd "$b" | awk '/=> \// {print $3} /^\s*\/.*ld-linux/ {print $1}'; done | sort -u)
  for lib in $libs; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  # Debian's /lib64 loader path must exist where the binaries' interpreter says.
  interp=$(readelf -l "$stage/bin/lenspipe" | sed -n 's/.*interpreter: \(.*\)]/\1/p')
  if [[ -n $interp && ! -e $root$interp ]]; then
    mkdir -p "$root$(dirname "$interp")"; cp -L "$interp" "$root$interp"
  fi
  certs=/etc/ssl/certs/ca-certificates.crt
  [[ -f $certs ]] || { say "no $certs on this host (apt-get install ca-certificates)"; exit 1; }
  cp "$certs" "$root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/nonexistent\nnobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n' > "$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
  printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$stage/rootfs.tar" .
  digest=$(sha256sum "$stage/rootfs.tar" | cut -c1-12)
  base=lenspipe-base:$digest
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    say "making $base from scratch ($(echo "$libs" | wc -w) shared libraries, CA certificates)"
    docker import -c 'LABEL org.opencontainers.image.description="lenspipe base: shared libraries only"' \
      "$stage/rootfs.tar" "$base" >/dev/null
  fi
  rm -rf "$root" "$stage/rootfs.tar"
fi

# 3. The image.
say "building $image on $base"
if ! docker build -q -f "$repo/deploy/Dockerfile" \
  --build-arg "BASE=$base" --build-arg "VERSION=$version" \
  --build-arg "GIT_COMMIT=$commit" --build-arg "PROFILE=$profile" \
  -t "$image" "$stage" > "$stage/build.log" 2>&1; then
  cat "$stage/build.log" >&2
  say "docker build failed"
  exit 1
fi
# The previous build of this tag, now untagged, is ours to remove.
docker image prune -f --filter "label=org.opencontainers.image.title=lenspipe" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$image")
say "$image: $((size / 1000000)) MB, commit $commit"
echo "$image"
