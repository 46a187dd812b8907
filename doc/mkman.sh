#!/bin/sh
# Writes a man page from sections of README.md, so that the pages and the README's tables
# cannot drift apart: the README is the one source.
#
#   doc/mkman.sh README.md 8|5 VERSION > tlsplice.8 | tlsplice.ini.5
#
# Page 8 (tlsplice): the introduction, "Command line", "Access log", "Metrics",
# "Kernel TLS", "Running many instances". Page 5 (tlsplice.ini): "Configuration" with its
# [global], [frontend NAME] and [backend NAME] tables.
set -eu
readme=$1 page=$2 version=$3
case $page in
8) name=tlsplice; title=TLSPLICE
   sections='Command line|Access log|Metrics|Kernel TLS|Running|Running many instances'
   summary='TLS-terminating TCP load balancer with kernel TLS' ;;
5) name=tlsplice.ini; title=TLSPLICE.INI; sections='Configuration'
   summary='configuration file of tlsplice' ;;
*) echo "usage: $0 README.md 8|5 VERSION" >&2; exit 2 ;;
esac

awk -v page="$page" -v name="$name" -v title="$title" -v version="$version" \
    -v sections="$sections" -v summary="$summary" '
# roff-safe text: backslashes, dashes, quotes; `code` in bold, **strong** in bold
function inline(s,   out, i, c, code) {
	gsub(/\\/, "\\e", s)
	gsub(/-/, "\\-", s)
	gsub(/\*\*/, "", s)
	out = ""; code = 0
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c == "`") { out = out (code ? "\\fR" : "\\fB"); code = !code }
		else out = out c
	}
	if (code) out = out "\\fR"
	return out
}
function line_out(s) {
	if (s ~ /^[.\047]/) s = "\\&" s
	print s
}
function cell(s) { sub(/^ +/, "", s); sub(/ +$/, "", s); return s }
function flush_para() { para = 0 }
BEGIN {
	n = split(sections, want, "|")
	for (i = 1; i <= n; i++) wanted[want[i]] = 1
	print ".\\\" Generated from README.md by doc/mkman.sh; edit the README, not this file."
	printf ".TH %s %s \"\" \"tlsplice %s\" \"tlsplice\"\n", title, page, version
	print ".SH NAME"
	printf "%s \\- %s\n", name, summary
	if (page == 8) {
		print ".SH SYNOPSIS"
		print ".B tlsplice"
		print "[\\fB\\-c\\fR \\fIFILE\\fR] [\\fB\\-t\\fR] [\\fB\\-V\\fR] [\\fB\\-h\\fR] [\\fB\\-l\\fR \\fILEVEL\\fR]"
		print ".SH DESCRIPTION"
		intro = 1
	}
	on = 0; table = 0; code = 0
}
/^# / { next }
/^## / {
	title2 = substr($0, 4); intro = 0
	on = (title2 in wanted)
	if (on) { print ".SH " toupper(inline(title2)) }
	table = 0; next
}
/^### / { if (on) print ".SS " inline(substr($0, 5)); table = 0; next }
!(on || intro) { next }
/^    / && !table {
	if (!code) { print ".PP"; print ".nf"; print ".RS 4"; code = 1 }
	line_out(inline(substr($0, 5))); next
}
code { print ".RE"; print ".fi"; code = 0 }
/^\|/ {
	if ($0 ~ /^\|[-:| ]+\|$/) next
	nf = split($0, f, "|")
	if (!table) { table = 1; header = 1; ncols = nf - 2; next } # the header row names the columns
	print ".TP"
	if (ncols >= 3)
		line_out(inline(cell(f[2])) " (default: " inline(cell(f[3])) ")")
	else
		line_out(inline(cell(f[2])))
	line_out(inline(cell(f[ncols >= 3 ? 4 : 3])))
	next
}
/^$/ { table = 0; para = 0; next }
/^- / { print ".IP \\(bu 2"; line_out(inline(substr($0, 3))); para = 1; next }
/^  [^ ]/ && para { line_out(inline(substr($0, 3))); next }
{
	table = 0
	if (!para) { print ".PP"; para = 1 }
	line_out(inline($0))
}
END {
	if (code) { print ".RE"; print ".fi" }
	print ".SH FILES"
	print ".TP"
	print ".I /etc/tlsplice/tlsplice.ini"
	print "the configuration file read by default"
	print ".SH SEE ALSO"
	if (page == 8) print "\\fBtlsplice.ini\\fR(5), \\fBopenssl\\fR(1), \\fBsplice\\fR(2)"
	else print "\\fBtlsplice\\fR(8)"
}' "$readme"
