#!/usr/bin/env bash
# Assembles the build context of the loadmon image (FROM scratch, see Containerfile):
#
#   CONTEXT/rootfs/usr/local/bin/loadmon      the release binary
#   CONTEXT/rootfs/<path of each library>     exactly what `ldd` says the binary loads
#                                             (the dynamic loader at its absolute path too)
#   CONTEXT/rootfs/etc/passwd, etc/group      root and one user: loadmon, uid/gid 10001
#   CONTEXT/rootfs/etc/nsswitch.conf          files, then dns (the resolver reads it)
#   CONTEXT/rootfs/tmp                        empty, mode 1777
#   CONTEXT/owned/data, owned/reports         empty: /data (the workers' files) and /reports
#                                             (the server's), owned by loadmon in the image
#
# Usage: deploy/image/assemble.sh BINARY CONTEXT
set -euo pipefail

bin=${1:?usage: assemble.sh BINARY CONTEXT}
ctx=${2:?usage: assemble.sh BINARY CONTEXT}
[ -x "$bin" ] || { echo "assemble.sh: $bin is not an executable" >&2; exit 2; }

rm -rf "$ctx"
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$ctx/owned/data" "$ctx/owned/reports"
install -m 0755 "$bin" "$root/usr/local/bin/loadmon"

# Every library the binary loads, copied with its path (symlinks resolved: the copy is the file
# under the name the loader looks for). `ldd` lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6
# (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (0x...)" (in the kernel).
libs=$(ldd "$bin" | awk '
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $2 == "=>" && $3 == "not" { print "MISSING " $1; next }
    $1 ~ /^\// { print $1 }')
if grep -q '^MISSING' <<<"$libs"; then
    echo "assemble.sh: ldd cannot find a library of $bin:" >&2
    grep '^MISSING' <<<"$libs" >&2
    exit 1
fi
for lib in $libs; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done

cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
loadmon:x:10001:10001:loadmon:/data:/sbin/nologin
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
loadmon:x:10001:
GROUP
# glibc's getaddrinfo reads this; without it, it still tries files then dns, but say it.
echo 'hosts: files dns' > "$root/etc/nsswitch.conf"
chmod 1777 "$root/tmp"

# What went in, for the README and the test.
(cd "$root" && find . -type f | sort) > "$ctx/MANIFEST"
echo "assemble.sh: $(wc -l < "$ctx/MANIFEST") file(s) in $root:"
sed 's/^/  /' "$ctx/MANIFEST"
