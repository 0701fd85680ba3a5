#!/bin/sh
# Times a whole `ptsync plan` at 20,000 users (LDAP fetch, PagerTree listing
# of an account in step, planning) against ldapsearch alone running the same
# searches one after the other (Debian packages slapd and ldap-utils).
# Extra arguments go to bench/planbench (-users, -groups, -members, -runs, -target).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/ptsync" ./cmd/ptsync
go build -o "$tmp/planbench" ./bench/planbench
"$tmp/planbench" -ptsync "$tmp/ptsync" "$@"
