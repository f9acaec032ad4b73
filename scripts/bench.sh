#!/usr/bin/env bash
# bench.sh: slotd's benchmarks, from the repository root (`make bench`
# builds first, then runs this). Each figure is printed against a baseline
# measured in the same run, with its target.
#
#   scripts/bench.py        install of a 150 MB / 3000-file package against
#                           tar -x + sync; peak RSS of slotctl install
#   scripts/bench_cycle.py  restart-and-verify and revert timing under a real
#                           systemd, refused connections, download and
#                           install from nginx against curl | tar + sync,
#                           the idle daemon (CPU per poll, RSS, wakeups),
#                           trigger latency, a 10,000-event backlog
#
# The download section waits 65 s before each timed run: on an ext4 without
# a journal, files created soon after a large deletion are slower to create
# (the kernel's recently_deleted() scan), which a worker updating every few
# hours never sees.
set -euo pipefail
cd -- "$(dirname -- "$0")/.."
python3 scripts/bench.py --rounds 3
python3 scripts/bench_cycle.py --rounds 2 --settle 65
