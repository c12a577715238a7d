#!/usr/bin/env bash
# Checks that scripts/packages.txt covers what the build looks for: every find_package and
# pkg_check_modules name and every find_program program in CMakeLists.txt and cmake/ must be
# provided by a line of the list, and every name the list provides must still be looked for.
# Needs nothing installed (a fresh machine can run it before install-deps.sh). Exit 1 with the
# differences when they disagree.
set -euo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root"

# The names the build looks for, one per line.
wanted=$(find . \( -name build -o -name node_modules -o -name .git -o -name 'build-*' \) -prune -o \
              \( -name CMakeLists.txt -o -path './cmake/*.cmake' \) -type f -print0 |
  xargs -0 perl -0777 -ne '
    s/#[^\n]*//g;                                   # comments
    while (/\bfind_package\s*\(\s*([\w.+-]+)/gi) { print "$1\n"; }
    while (/\bpkg_check_modules\s*\(\s*\w+([^)]*)\)/gi) {
      for my $w (split /\s+/, $1) {
        next if $w eq "" || $w =~ /^(REQUIRED|QUIET|IMPORTED_TARGET|GLOBAL|NO_CMAKE_PATH|NO_CMAKE_ENVIRONMENT_PATH)$/;
        $w =~ s/[<>=].*//; print "$w\n";
      }
    }
    while (/\bfind_program\s*\(\s*\w+\s+(?:NAMES\s+)?([\w.+-]+)/gi) { print "program:$1\n"; }
  ' | sort -u)

# The names the list provides (columns 3 onward).
provided=$(awk '!/^[[:space:]]*(#|$)/ { for (i = 3; i <= NF; i++) print $i }' scripts/packages.txt | sort -u)

missing=$(comm -23 <(echo "$wanted") <(echo "$provided"))
stale=$(comm -13 <(echo "$wanted") <(echo "$provided"))
status=0
if [[ -n $missing ]]; then
  echo "scripts/packages.txt: no package provides what the build looks for:" >&2
  sed 's/^/  /' <<<"$missing" >&2
  status=1
fi
if [[ -n $stale ]]; then
  echo "scripts/packages.txt: the build no longer looks for:" >&2
  sed 's/^/  /' <<<"$stale" >&2
  status=1
fi
((status == 0)) && echo "scripts/packages.txt covers the $(wc -l <<<"$wanted") names the build looks for"
exit $status
