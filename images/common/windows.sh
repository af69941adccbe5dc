#!/usr/bin/env bash
# Shared steps for the phony Windows test guests (sourced by their build.sh).
#
# A phony Windows guest is an NTFS disk with the file layout of the real
# thing (system root, system32\config hives, system32\drivers, the boot
# files) whose registry hives are real regf files: an empty hive is
# written here (hivex cannot create one), then the recipe's .reg files are
# merged into it with hivexregedit. Executables are placeholders, except
# that cmd.exe is a minimal PE header of the right machine (libguestfs
# reads the guest's architecture from it with `file`). No image here can
# boot: the tests prove what is written, never that Windows starts.
#
# .reg files may use two shorthands, expanded before the merge:
#   "Name"=expand:"text"   REG_EXPAND_SZ     "Name"=multi:"a","b"   REG_MULTI_SZ
#
# Inputs (environment): OUT (raw image to create), WORK (scratch directory).
set -euo pipefail
: "${OUT:?}" "${WORK:?}"
export LIBGUESTFS_BACKEND="${LIBGUESTFS_BACKEND:-direct}"
export LIBGUESTFS_BACKEND_SETTINGS="${LIBGUESTFS_BACKEND_SETTINGS:-force_tcg}"

T="$WORK/tree"
rm -rf "$T" && mkdir -p "$T"

log() { echo "[image] $*" >&2; }

# put PATH < content: writes a guest file (PATH relative to the volume).
put() {
    mkdir -p "$(dirname "$T/$1")"
    cat > "$T/$1"
}

# placeholder PATH...: a file that stands for a binary of the real guest.
placeholder() {
    local p
    for p in "$@"; do
        mkdir -p "$(dirname "$T/$p")"
        printf 'xen2kvm phony Windows file: %s\n' "$p" > "$T/$p"
    done
}

# pe_stub PATH i386|x86_64: a minimal PE executable header (what `file`
# needs to name the machine).
pe_stub() {
    mkdir -p "$(dirname "$T/$1")"
    python3 - "$T/$1" "$2" <<'PY'
import struct, sys
path, arch = sys.argv[1], sys.argv[2]
plus = arch == "x86_64"
b = bytearray(1024)
b[0:2] = b"MZ"
struct.pack_into("<I", b, 0x3C, 0x80)
b[0x80:0x84] = b"PE\0\0"
struct.pack_into("<HHIIIHH", b, 0x84, 0x8664 if plus else 0x14C, 0, 0, 0, 0,
                 240 if plus else 224, 0x0022 if plus else 0x0102)
struct.pack_into("<H", b, 0x98, 0x20B if plus else 0x10B)
struct.pack_into("<H", b, 0x98 + 68, 3)  # subsystem: Windows console
open(path, "wb").write(b)
PY
}

# hive PATH NAME REGFILE PREFIX: an empty regf hive at PATH with REGFILE
# merged into it (PREFIX: HKEY_LOCAL_MACHINE\SYSTEM or ...\SOFTWARE).
hive() {
    local path="$1" name="$2" reg="$3" prefix="$4"
    mkdir -p "$(dirname "$T/$path")"
    python3 - "$T/$path" "$name" <<'PY'
import struct, sys
path, name = sys.argv[1], sys.argv[2]
page = 4096
nk_off, sk_off = 0x20, 0x80          # cell offsets, from the first hbin
nk = bytearray(0x60)                 # the root key: no subkeys, no values
struct.pack_into("<i2sHQIIIIIIIIIIHHIIIIHH", nk, 0, -0x60, b"nk", 0x2C, 0, 0,
                 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF, 0, 0xFFFFFFFF, sk_off,
                 0xFFFFFFFF, 0, 0, 0, 0, 0, 0, 4, 0)
nk[0x50:0x54] = b"ROOT"
sd = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 0)   # self-relative, empty
sk = bytearray(0x30)                 # one security cell, linked to itself
struct.pack_into("<i2sHiiII", sk, 0, -0x30, b"sk", 0, sk_off, sk_off, 1, len(sd))
sk[0x18:0x18 + len(sd)] = sd
hbin = bytearray(page)
struct.pack_into("<4sIIIIQI", hbin, 0, b"hbin", 0, page, 0, 0, 0, 0)
hbin[nk_off:nk_off + len(nk)] = nk
hbin[sk_off:sk_off + len(sk)] = sk
struct.pack_into("<i", hbin, sk_off + len(sk), page - sk_off - len(sk))  # free
base = bytearray(page)
struct.pack_into("<4sIIQIIIIIII", base, 0, b"regf", 1, 1, 0, 1, 3, 0, 1,
                 nk_off, page, 1)
fn = name.encode("utf-16-le")[:64]
base[48:48 + len(fn)] = fn
csum = 0
for i in range(0, 0x1FC, 4):
    csum ^= struct.unpack_from("<I", base, i)[0]
struct.pack_into("<I", base, 0x1FC, csum)
open(path, "wb").write(bytes(base) + bytes(hbin))
PY
    python3 - "$reg" "$WORK/$name.reg" <<'PY'
import re, sys
src, dst = sys.argv[1], sys.argv[2]
def hexbytes(b):
    return ",".join("%02x" % x for x in b)
def utf16(s):
    return s.encode("utf-16-le") + b"\0\0"
def unescape(s):
    return re.sub(r'\\(.)', lambda m: m.group(1), s)
out = []
for line in open(src, encoding="utf-8"):
    line = line.rstrip("\n")
    m = re.match(r'^("[^"]*")=expand:"(.*)"$', line)
    if m:
        line = "%s=hex(2):%s" % (m.group(1), hexbytes(utf16(unescape(m.group(2)))))
    m = re.match(r'^("[^"]*")=multi:(.*)$', line)
    if m:
        items = [unescape(i) for i in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))]
        data = b"".join(utf16(i) for i in items) + b"\0\0"
        line = "%s=hex(7):%s" % (m.group(1), hexbytes(data))
    out.append(line)
open(dst, "w", encoding="utf-8").write("\n".join(out) + "\n")
PY
    hivexregedit --merge "$T/$path" "$WORK/$name.reg" --prefix "$prefix"
}

# make_windows_disk LAYOUT: the tree onto a new NTFS disk at $OUT.
#   xp-era:  one NTFS partition at sector 63, active (Windows 2003).
#   reserved: a "System Reserved" NTFS partition (the boot files under
#             $T/../reserved) and the system partition (Windows 2008 R2).
make_windows_disk() {
    local layout="$1"
    rm -f "$OUT"
    truncate -s 96M "$OUT"
    tar --numeric-owner --owner=0 --group=0 -C "$T" -cf "$WORK/tree.tar" .
    {
        echo "run"
        echo "part-init /dev/sda mbr"
        case "$layout" in
            xp-era)
                echo "part-add /dev/sda p 63 -1"
                echo "part-set-bootable /dev/sda 1 true"
                echo "mkfs ntfs /dev/sda1 label:"
                echo "mount /dev/sda1 /"
                ;;
            reserved)
                tar --numeric-owner --owner=0 --group=0 -C "$WORK/reserved" -cf "$WORK/reserved.tar" .
                echo "part-add /dev/sda p 2048 34815"
                echo "part-add /dev/sda p 34816 -1"
                echo "part-set-bootable /dev/sda 1 true"
                echo "mkfs ntfs /dev/sda1 label:System_Reserved"
                echo "mkfs ntfs /dev/sda2"
                echo "mount /dev/sda1 /"
                echo "tar-in $WORK/reserved.tar /"
                echo "umount /"
                echo "mount /dev/sda2 /"
                ;;
            *)
                echo "unknown layout $layout" >&2
                exit 1
                ;;
        esac
        echo "tar-in $WORK/tree.tar /"
        echo "umount-all"
    } > "$WORK/disk.fish"
    guestfish --rw --format=raw -a "$OUT" -f "$WORK/disk.fish" >&2
    log "built $OUT ($layout)"
}
