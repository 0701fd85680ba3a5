#!/bin/sh
# Watch mode's propagation latency (issue 13; docs/benchmarks.md, "Watch
# mode"): single membership changes written to OpenLDAP (syncprov) and to
# Active Directory (a Samba DC), timed until the PagerTree emulator sees the
# team's PUT, with `ptsync run` at watch.debounce 5s and
# requests_per_second 10, 20,000 users. Needs Debian's slapd, ldap-utils
# and samba-ad-dc, and root for the DC; everything listens on 127.0.0.1.
# Extra arguments go to bench/watchbench (-directories, -users, -ad-users,
# -changes, -debounce, -gap, -rps, -scope, -keep).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/ptsync" ./cmd/ptsync
go build -o "$tmp/watchbench" ./bench/watchbench
"$tmp/watchbench" -ptsync "$tmp/ptsync" "$@"
