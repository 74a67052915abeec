#!/usr/bin/env bash
# Installs release builds of lenspipe, lenspipe-scheduler and
# lenspipe-executor into $PREFIX/bin (default: ~/.cargo/bin, on PATH after a
# rustup install). One build for the three (cargo's output shows it going;
# ~25 min the first time on 2 cores). Environment: PREFIX, CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${PREFIX:-${CARGO_HOME:-$HOME/.cargo}}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
bins=(lenspipe lenspipe-scheduler lenspipe-executor)
echo "install: cargo build --release --workspace --bins"
# --workspace: the feature set the benchmarks and images build, so their builds are reused.
cargo build --release --workspace --bins
mkdir -p "$prefix/bin"
for b in "${bins[@]}"; do
  install -m 0755 "$target_dir/release/$b" "$prefix/bin/$b"
done
echo "install: ${bins[*]} in $prefix/bin ($(du -sh "$prefix/bin/lenspipe" | cut -f1) lenspipe)"
"$prefix/bin/lenspipe" --version
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "install: $prefix/bin is not on PATH; add it: export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
