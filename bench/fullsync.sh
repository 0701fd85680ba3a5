#!/usr/bin/env bash
# Full sync benchmark (docs/benchmarks.md, "Full sync"): ptsync syncs a file
# directory of USERS people in TEAMS on-call groups into an empty
# `ptsync emulator` running in another process, then runs again converged.
# Peak RSS is ptsync's alone, read from GNU time. Everything is on 127.0.0.1.
#
#   bench/fullsync.sh [USERS] [TEAMS]      # defaults: 100000 10000
set -euo pipefail

users=${1:-100000}
teams=${2:-10000}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
emu_pid=""
cleanup() {
	if [ -n "$emu_pid" ]; then kill "$emu_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/ptsync" ./cmd/ptsync

# The directory: every person in exactly one group, users/teams per group.
python3 - "$users" "$teams" >"$work/people.yaml" <<'EOF'
import sys
users, teams = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout
out.write("users:\n")
for i in range(users):
    out.write(f"  - {{id: u{i:06d}, email: u{i:06d}@example.com, name: Person {i:06d}}}\n")
out.write("groups:\n")
members = [[] for _ in range(teams)]
for i in range(users):
    members[i % teams].append(f"u{i:06d}")
for g in range(teams):
    out.write(f"  - {{id: grp-{g:05d}, name: oncall-{g:05d}, members: [{', '.join(members[g])}]}}\n")
EOF

# A free loopback port for the emulator.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$work/ptsync" emulator --listen "127.0.0.1:$port" >"$work/emulator.log" 2>&1 &
emu_pid=$!
for _ in $(seq 100); do
	grep -q listening "$work/emulator.log" && break
	sleep 0.1
done

cat >"$work/ptsync.yaml" <<EOF
pagertree:
  url: http://127.0.0.1:$port
  username: admin@example.com
  password: password
  requests_per_second: 100000
  concurrency: 8
sources:
  - {name: corp, type: file, file: {path: $work/people.yaml}}
teams:
  - {source: corp, match: "oncall-*"}
log: {level: warn}
EOF

measure() {
	local label=$1
	/usr/bin/time -f "%e %M" -o "$work/time.txt" "$work/ptsync" sync --config "$work/ptsync.yaml" >"$work/out.txt"
	read -r secs kib <"$work/time.txt"
	printf '%-16s %8.1f s  peak RSS %6.1f MB  %s\n' "$label" "$secs" "$(echo "$kib / 1024" | bc -l)" "$(tail -n 1 "$work/out.txt")"
}

echo "ptsync sync: $users users, $teams teams, emulator in another process"
measure "first sync"
measure "converged run"
