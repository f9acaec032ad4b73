#!/usr/bin/env bash
# Runs every integration test script (tests/integration/test-*.sh) against
# the built binaries. Each script prints "ok - ..." / "not ok - ..." lines
# and exits non-zero when any check failed; this runner adds them up.
# A name filter may be given: run.sh store  runs test-store*.sh only.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
passed=0
failed=0
failed_scripts=()
for t in "$here"/test-${1:-}*.sh; do
        [ -e "$t" ] || continue
        name=$(basename "$t")
        echo "== $name"
        log=$(mktemp)
        start=$(date +%s)
        bash "$t" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        p=$(grep -c '^ok ' "$log")
        f=$(grep -c '^not ok ' "$log")
        rm -f "$log"
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
                echo "not ok - $name exited $rc"
                f=1
        fi
        passed=$((passed + p))
        failed=$((failed + f))
        [ "$f" -gt 0 ] && failed_scripts+=("$name")
        echo "-- $name: $p passed, $f failed ($(($(date +%s) - start)) s)"
done
[ ${#failed_scripts[@]} -gt 0 ] && echo "failing scripts: ${failed_scripts[*]}"
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
