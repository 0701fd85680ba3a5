#!/bin/sh
# Compares ptsync's LDAP fetch with `ldapsearch -E pr=1000/noprompt` for the
# same entries and attributes, on a local slapd loaded with 50,000 users and
# 5,000 groups of 20 members (Debian packages slapd and ldap-utils).
# Extra arguments go to bench/ldapbench (-users, -groups, -members, -runs, -page).
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/ldapbench" ./bench/ldapbench
"$tmp/ldapbench" "$@"
