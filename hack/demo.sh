#!/usr/bin/env bash
# make demo: set up the components (unless --ci: CI ran `make setup`), build secretmount and
# the demo program, and run the demo. Everything it does is in test/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
ci=
if [[ "${1:-}" == "--ci" ]]; then ci=--ci; shift; fi
bin="${BIN:-bin}"
if [[ -z "$ci" ]]; then
	echo "==> installing or building the components (hack/setup)"
	bash hack/setup/all.sh
fi
echo "==> building secretmount and the demo into $bin/"
# The same build flags as the tests, so a warm Go build cache serves both.
go build -o "$bin/secretmount" ./cmd/secretmount
go build -o "$bin/secretmount-demo" ./test/demo
rc=0
"$bin/secretmount-demo" --secretmount "$bin/secretmount" $ci "$@" || rc=$?
echo "make demo: total $(( $(date +%s) - start ))s"
exit $rc
