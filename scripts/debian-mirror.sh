# Sourced by sandbox/build-image.sh and deploy/build-images.sh (not run): debian_mirror SUITE
# prints the main-archive URIs for SUITE in this machine's apt sources (deb822 files first, then
# one-line ones), in order; the first is the one to debootstrap from.
debian_mirror() {
    local suite="$1" f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk -v suite="$suite" '
            function flush() { if (uri != "" && ok) { print uri; found = 1; exit } uri = ""; ok = 0 }
            /^[[:space:]]*$/ { flush(); next }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
            END { if (!found) flush() }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        awk -v suite="$suite" '$1 == "deb" {
            i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
            if ($(i + 1) == suite) { print $i; exit } }' "$f"
    done
}
