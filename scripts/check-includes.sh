#!/usr/bin/env bash
# Prints the include cycles among the modules of src/, one per line, or "no include cycles".
# A module is a src/NAME.c (or the folder src/NAME/) with its include/tlsplice/NAME.h; module A depends on B when A's
# .c or .h includes "tlsplice/B.h". A cycle is a strongly connected component of that graph
# with more than one module: none of its modules can be read, tested or replaced alone.
# Headers with no src/NAME.c of their own are not edges: clock.h (inline clock reads) and
# pool-t.h (a type only, as HAProxy's -t.h headers) hold no code that could call back.
# --sizes also lists the source files over 800 lines under src/, tests/ and scripts/.
# Exits 0 when all is clean, 1 when a cycle (or, with --sizes, a long file) is found.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

MAX_LINES=800
sizes=0
case "${1:-}" in
"") ;;
--sizes) sizes=1 ;;
*) echo "usage: $0 [--sizes]" >&2; exit 2 ;;
esac

# a folder of src/ (src/config/*.c) is one module, named after it, with include/tlsplice/NAME.h
modules=$(find src -name '*.c' | sed 's|^src/||; s|\.c$||; s|/.*||' | sort -u)

# One "A B" line per include of module B by module A.
edges() {
	local m f
	for m in $modules; do
		for f in "src/$m.c" src/"$m"/*.c "include/tlsplice/$m.h"; do
			[ -f "$f" ] || continue
			sed -n 's|^[[:space:]]*#[[:space:]]*include[[:space:]]*"tlsplice/\(.*\)\.h".*|\1|p' "$f" |
				sed "s|^|$m |"
		done
	done
}

# Tarjan's strongly connected components; plain POSIX awk (scalar locals only, so it runs
# under mawk as well as gawk).
cycles=$(edges | awk -v modules="$modules" '
function strong(v,    i, w) {
	index_of[v] = ++counter
	low[v] = counter
	stack[++sp] = v
	on_stack[v] = 1
	for (i = 1; i <= nadj[v]; i++) {
		w = adj[v, i]
		if (!(w in index_of)) {
			strong(w)
			if (low[w] < low[v])
				low[v] = low[w]
		} else if (on_stack[w] && index_of[w] < low[v]) {
			low[v] = index_of[w]
		}
	}
	if (low[v] != index_of[v])
		return
	n = 0
	do {
		w = stack[sp--]
		on_stack[w] = 0
		member[++n] = w
	} while (w != v)
	if (n > 1)
		print_component()
}
function print_component(    i, j, t, line) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && member[j - 1] > member[j]; j--) {
			t = member[j]; member[j] = member[j - 1]; member[j - 1] = t
		}
	line = "cycle:"
	for (i = 1; i <= n; i++)
		line = line " " member[i] ".c"
	print line
}
BEGIN {
	nmod = split(modules, mod, /[ \n]+/)
	for (i = 1; i <= nmod; i++)
		is_module[mod[i]] = 1
}
$1 != $2 && ($2 in is_module) && !(($1, $2) in seen) {
	seen[$1, $2] = 1
	adj[$1, ++nadj[$1]] = $2
}
END {
	for (i = 1; i <= nmod; i++)
		if (!(mod[i] in index_of))
			strong(mod[i])
}' | sort)

rc=0
if [ -n "$cycles" ]; then
	echo "$cycles"
	rc=1
else
	echo "no include cycles"
fi

if [ $sizes = 1 ]; then
	long=$(find src tests scripts -type f \( -name '*.[ch]' -o -name '*.sh' -o -name '*.awk' \
		-o -name '*.py' -o -name meson.build \) -print0 | xargs -0 wc -l |
		awk -v max=$MAX_LINES '$2 != "total" && $1 > max { printf "%6d %s\n", $1, $2 }' |
		sort -k2)
	if [ -n "$long" ]; then
		echo "files over $MAX_LINES lines:"
		echo "$long"
		rc=1
	else
		echo "no files over $MAX_LINES lines"
	fi
fi
exit $rc
