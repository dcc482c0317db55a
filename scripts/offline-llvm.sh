#!/usr/bin/env bash
# Lets burn's `cuda` feature (and CubeCL's `cpu` compiler) build without network access.
#
# cubecl-llvm's build dependency tracel-llvm-bundler downloads an LLVM bundle from GitHub into
# ${XDG_DATA_HOME:-~/.local/share}/tracel/tracel-llvm-VERSION/ unless that folder already holds
# the file .tracel-llvm-installed; cubecl-llvm's build script then runs the folder's
# bin/llvm-config for its flags and libraries. This script installs Debian's LLVM (packages
# llvm-N-dev, libpolly-N-dev, libzstd-dev) and lays out that folder with an llvm-config that
# forwards to Debian's. It is idempotent, and it leaves alone a folder it did not make (a real
# download). docs/scaling.md ("CUDA without network") says what was checked with it.
#
# Usage: scripts/offline-llvm.sh [--check]
#   --check  only report whether the folder is laid out and works; install nothing.
# Environment: LLVM_MAJOR (default 22, the newest LLVM Debian 12 carries).
set -euo pipefail
cd "$(dirname "$0")/.."

major="${LLVM_MAJOR:-22}"
real="/usr/lib/llvm-$major/bin/llvm-config"
# The folder's name carries the bundler's version, so read it from the lock file: a newer
# burn looks in another folder.
version="$(grep -A1 '^name = "tracel-llvm-bundler"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')"
if [ -z "$version" ]; then
    echo "offline-llvm: Cargo.lock names no tracel-llvm-bundler: nothing to lay out" >&2
    exit 1
fi
dir="${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-$version"
marker="fm offline-llvm"

check() {
    local out
    out="$("$dir/bin/llvm-config" --link-static --system-libs)" || return 1
    # The bundler reads each word as a library name: an absolute path would become -llibNAME.
    if grep -q '/' <<<"$out"; then
        echo "offline-llvm: $dir/bin/llvm-config still prints library paths: $out" >&2
        return 1
    fi
    echo "offline-llvm: $dir -> LLVM $("$dir/bin/llvm-config" --version) (system libraries: $out)"
}

if [ "${1:-}" = "--check" ]; then
    check
    exit
fi

if [ -e "$dir/.tracel-llvm-installed" ] && ! grep -qs "$marker" "$dir/bin/llvm-config"; then
    echo "offline-llvm: $dir holds an LLVM this script did not lay out (the bundler's own download?); left as it is"
    exit 0
fi

packages=()
for p in "llvm-$major-dev" "libpolly-$major-dev" libzstd-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || packages+=("$p")
done
if [ "${#packages[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "offline-llvm: installing ${packages[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi
if [ ! -x "$real" ]; then
    echo "offline-llvm: $real is missing after installing llvm-$major-dev" >&2
    exit 1
fi

mkdir -p "$dir/bin"
tmp="$(mktemp "$dir/bin/.llvm-config.XXXXXX")"
cat >"$tmp" <<EOF
#!/bin/sh
# $marker: forwards to Debian's LLVM $major (scripts/offline-llvm.sh of flow-matching).
# Absolute library paths in the output (/usr/lib/x86_64-linux-gnu/libz3.so) become -lNAME,
# the form tracel-llvm-bundler turns into link arguments.
out=\$("$real" "\$@") || exit \$?
printf '%s\n' "\$out" | sed -E 's#(^|[[:space:]])/[^[:space:]]*/lib([^/[:space:]]+)\.so(\.[0-9.]+)?#\1-l\2#g'
EOF
chmod +x "$tmp"
mv "$tmp" "$dir/bin/llvm-config"
touch "$dir/.tracel-llvm-installed"
check
