#!/usr/bin/env bash
# The arrows between service/'s folders, from the code's own #includes: `a → b` when a file in
# service/a/ includes a header of service/b/. Prints the layers (each folder one above the
# highest it includes) and the list of arrows, as docs/architecture.md shows them between its
# "arrows:begin" and "arrows:end" markers.
#   scripts/arch-arrows.sh                  prints them
#   scripts/arch-arrows.sh --write DOC      replaces the block in DOC
#   scripts/arch-arrows.sh --check DOC      exit 1, naming the differences, when DOC's block is
#                                           not what the code says (the deploy.architecture test)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
doc=${2:+$(realpath "$2")}
cd "$root/service"
mapfile -t folders < <(find . -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
declare -A is_folder deps floor
for f in "${folders[@]}"; do is_folder[$f]=1; done
for f in "${folders[@]}"; do
  list=$({ grep -ho '^#include "[a-z_]*/' "$f"/*.h "$f"/*.cc 2>/dev/null || true; } |
         sed 's/^#include "\(.*\)\/$/\1/' | sort -u | while read -r d; do
           if [[ $d != "$f" && -n ${is_folder[$d]:-} ]]; then echo "$d"; fi; done | tr '\n' ' ')
  deps[$f]=${list% }
done
# Floors: 0 for a folder that includes none of the others; else one above its highest.
changed=1
for f in "${folders[@]}"; do floor[$f]=0; done
while ((changed)); do
  changed=0
  for f in "${folders[@]}"; do
    for d in ${deps[$f]}; do
      if ((floor[$f] <= floor[$d])); then floor[$f]=$((floor[$d] + 1)); changed=1; fi
      ((floor[$f] < 100)) || { echo "service/: a cycle through $f" >&2; exit 1; }
    done
  done
done

render() {
  local top=0 f
  for f in "${folders[@]}"; do if ((floor[$f] > top)); then top=${floor[$f]}; fi; done
  echo '```'
  for ((l = top; l >= 0; l--)); do
    local names=()
    for f in "${folders[@]}"; do if ((floor[$f] == l)); then names+=("$f"); fi; done
    printf ' layer %-3s %s\n' "$l" "$(printf '%s    ' "${names[@]}" | sed 's/ *$//')"
  done
  echo '```'
  echo
  for ((l = top; l >= 0; l--)); do
    for f in "${folders[@]}"; do
      if ((floor[$f] != l)); then continue; fi
      if [[ -n ${deps[$f]} ]]; then
        echo "- \`$f\` → $(sed 's/\([a-z_]*\)/`\1`/g; s/ /, /g' <<<"${deps[$f]}")"
      fi
    done
  done
}

block() { sed -n '/<!-- arrows:begin/,/<!-- arrows:end/p' "$1" | sed '1d;$d'; }

case ${1:-} in
  "") render ;;
  --write)
    grep -q '<!-- arrows:end' "$doc" || { echo "$doc: no arrows:begin/arrows:end block" >&2; exit 1; }
    new=$(render)
    awk -v new="$new" '/<!-- arrows:begin/ {print; print new; skip=1; next}
                       /<!-- arrows:end/ {skip=0} !skip' "$doc" > "$doc.tmp" && mv "$doc.tmp" "$doc" ;;
  --check)
    if ! diff <(block "$doc") <(render) > /tmp/arch-arrows.$$; then
      echo "$doc does not show the arrows the code has (< the document, > the code):" >&2
      grep '^[<>]' /tmp/arch-arrows.$$ >&2
      echo "Regenerate it: scripts/arch-arrows.sh --write $doc" >&2
      rm -f /tmp/arch-arrows.$$
      exit 1
    fi
    rm -f /tmp/arch-arrows.$$
    echo "$doc shows the ${#folders[@]} folders' arrows as the code has them" ;;
  *) echo "usage: $0 [--write DOC | --check DOC]" >&2; exit 2 ;;
esac
