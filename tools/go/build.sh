#!/usr/bin/env bash
# Builds the pinned Go programs of the real-server tests and the bench into .tools/bin (git-ignored):
# one tool module per upstream program under tools/go/<name>/ (go.mod + go.sum pin every version), so
# each is built with the dependency versions its authors tested. A binary whose recorded stamp (its
# module's go.mod/go.sum and the Go version) matches is reused, so a second run takes a moment.
# Without Go it prints one line and exits 0: only the real-server tests need these binaries, and they
# report that line (fail in CI, skip elsewhere).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"
if ! command -v go >/dev/null 2>&1; then
  echo "go: missing; the real niks3 server tests need Go >= 1.25 (https://go.dev/doc/install), then run .ci/setup again" \
    | tee "$bin/MISSING"
  exit 0
fi
rm -f "$bin/MISSING"
go_version=$(go env GOVERSION)

# name|module path|programs (packages) to build
tools=(
  "niks3|github.com/Mic92/niks3|github.com/Mic92/niks3/cmd/niks3-server github.com/Mic92/niks3/cmd/niks3"
  "versitygw|github.com/versity/versitygw|github.com/versity/versitygw/cmd/versitygw"
)
for entry in "${tools[@]}"; do
  IFS='|' read -r name module packages <<<"$entry"
  dir="$root/tools/go/$name"
  version=$(awk -v m="$module" '$1 == "require" && $2 == m { print $3 } $1 == m { print $2 }' "$dir/go.mod" | head -1)
  stamp="$module $version $go_version $(cat "$dir/go.mod" "$dir/go.sum" | sha256sum | cut -c1-16)"
  stamp_file="$bin/.$name.stamp"
  fresh=1
  for package in $packages; do [ -x "$bin/${package##*/}" ] || fresh=0; done
  if [ "$fresh" -eq 1 ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
    echo "$name: $module $version (built already, $go_version)"
    continue
  fi
  started=$(date +%s)
  # shellcheck disable=SC2086 # the package list is split on purpose
  (cd "$dir" && GOFLAGS="${GOFLAGS:-} -mod=readonly" CGO_ENABLED=0 go build -trimpath -o "$bin/" $packages)
  printf '%s\n' "$stamp" >"$stamp_file"
  echo "$name: $module $version (built in $(($(date +%s) - started)) s, $go_version)"
done
