# Shell helpers for the scripts that make Debian trees (docker-test.sh, package.sh,
# deb13-test.sh). Sourced, never run.
# shellcheck shell=bash

# The Debian mirror this machine's apt sources name (deb822 or one-line form).
apt_mirror() {
	local m
	m=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' |
		grep -v security | head -1)
	[ -n "$m" ] || m=$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' |
		grep -v security | head -1)
	echo "${m:-http://deb.debian.org/debian}"
}
