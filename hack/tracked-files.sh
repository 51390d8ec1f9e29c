#!/usr/bin/env bash
# Fails when git tracks a file over 1 MB or an executable binary (ELF, Mach-O
# or PE by its first bytes, or content git sees as binary with the executable
# bit), so that no build output is committed again: the repository once
# carried a 52 MB build of the controller at its root. It reads the index,
# what a commit would hold, not the work tree.
set -euo pipefail

limit=$((1024 * 1024))
# One line per tracked blob: size, object, mode, git's i/ text-or-binary
# verdict ("i/-text" is binary), path. Submodules (160000) have no blob here.
files=$(git ls-files --stage --eol |
	awk -F'\t' '{ split($1, m, " "); split($2, e, " "); if (m[1] != "160000") print m[2], m[1], e[1], $3 }' |
	git cat-file --batch-check='%(objectsize) %(objectname) %(rest)')
bad=0
while read -r size sha mode eol path; do
	[[ -n $size ]] || continue
	why=
	if ((size > limit)); then
		why="$size bytes, over the $limit-byte limit"
	elif [[ $eol == i/-text ]]; then
		magic=$(od -An -tx1 -N4 < <(git cat-file blob "$sha") | tr -d ' \n')
		case $magic in
		7f454c46) why="an ELF executable" ;;
		feedface | feedfacf | cefaedfe | cffaedfe | cafebabe) why="a Mach-O executable" ;;
		4d5a*) why="a PE executable" ;;
		2321*) ;; # a script with a shebang
		*) [[ $mode != 100755 ]] || why="binary, with the executable bit" ;;
		esac
	fi
	if [[ -n $why ]]; then
		echo "tracked file $path: $why; keep build outputs and large files out of git" >&2
		bad=1
	fi
done <<<"$files"
exit $bad
