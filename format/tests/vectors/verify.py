#!/usr/bin/env python3
"""An independent verifier for ota-sign objects, written from docs/FORMAT.md alone.

Usage: verify.py vectors.json
Checks every vector listed in the index and prints one line per disagreement, then
"N/N vectors agree". Exit status 0 only if all agree. Needs the `cryptography` package
(Ed25519); everything else is the standard library.
"""

import hashlib
import json
import os
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

IMAGE_DOMAIN = b"ota-sign image v1\0"
DELTA_DOMAIN = b"ota-sign delta v1\0"
MANIFEST_DOMAIN = b"ota-sign manifest v1\0"
ROLLOUT_DOMAIN = b"ota-sign rollout v1\0"
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493
MAX_IMAGE = 16 * 1024 * 1024
MAX_PAYLOAD = MAX_IMAGE + 64 * 1024
MAX_STREAM = 2 * MAX_IMAGE
DESC_MAGIC = b"OTAKEYS!" + bytes.fromhex("9c5e12d07b33a16e")
DESC_LEN = 276


class Reject(Exception):
    """A rejection, named as in FORMAT.md's error table."""


def u16(b, o):
    return int.from_bytes(b[o:o + 2], "little")


def u32(b, o):
    return int.from_bytes(b[o:o + 4], "little")


def u64(b, o):
    return int.from_bytes(b[o:o + 8], "little")


def padded(field, valid, err):
    n = field.find(0)
    n = len(field) if n < 0 else n
    text, rest = field[:n], field[n:]
    if any(rest) or not valid(text):
        raise Reject(err)
    return text


def valid_name(s):
    ok = set(b"abcdefghijklmnopqrstuvwxyz0123456789")
    return len(s) > 0 and s[0] in ok and all(c in ok or c in b"-_" for c in s)


def valid_image_name(s):
    ok = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")
    return len(s) > 0 and s[0] != ord(".") and b".." not in s and all(c in ok for c in s)


def valid_pre(s):
    ok = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
    for ident in s.split(b"."):
        if not ident or not all(c in ok for c in ident):
            return False
        if ident.isdigit() and len(ident) > 1 and ident[0] == ord("0"):
            return False
    return True


def version(field):
    """Decodes the 32-byte version into (major, minor, patch, pre-identifiers)."""
    pre = padded(field[12:32], lambda p: not p or valid_pre(p), "InvalidField(Version)")
    return (u32(field, 0), u32(field, 4), u32(field, 8), pre.split(b".") if pre else [])


def parse_version(text):
    core, _, pre = text.partition("-")
    major, minor, patch = (int(x) for x in core.split("."))
    return (major, minor, patch, pre.encode().split(b".") if pre else [])


def version_key(v):
    """A sort key giving semver precedence."""
    def ident(i):
        return (0, len(i), i) if i.isdigit() else (1, 0, i)
    # A release (no pre-release) is above every pre-release of the same core.
    pre = (1,) if not v[3] else (0, [ident(i) for i in v[3]])
    return (v[0], v[1], v[2], pre)


# Edwards25519 (RFC 8032 §5.1): field prime, curve constant d, sqrt(-1).
P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def decode_point(b):
    """RFC 8032 §5.1.3 point decoding (y taken mod p); None if not on the curve."""
    y = int.from_bytes(b, "little") & ((1 << 255) - 1)
    y %= P
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    elif v * x * x % P != u:
        return None
    if x == 0 and b[31] >> 7:
        return None
    if x & 1 != b[31] >> 7:
        x = P - x
    return x, y


def add(p1, p2):
    (x1, y1), (x2, y2) = p1, p2
    t = D * x1 * x2 * y1 * y2 % P
    return ((x1 * y2 + y1 * x2) * pow(1 + t, P - 2, P) % P,
            (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P)


def small_order(b):
    """True if the 32 bytes encode a point whose order divides 8 ([8]P = identity)."""
    point = decode_point(b)
    if point is None:
        return False
    for _ in range(3):
        point = add(point, point)
    return point == (0, 1)


def check_signature(obj, length, key_id_off, domain, trusted):
    key_id = obj[key_id_off:key_id_off + 8]
    keys = [k for k in trusted if hashlib.sha256(k).digest()[:8] == key_id]
    if not keys:
        raise Reject("UnknownKey")
    sig = obj[length - 64:length]
    if int.from_bytes(sig[32:], "little") >= GROUP_ORDER:
        raise Reject("SignatureInvalid")
    # FORMAT.md: small-order A and R MUST be refused; OpenSSL (under `cryptography`)
    # does not check either, so this verifier does.
    if small_order(keys[0]) or small_order(sig[:32]):
        raise Reject("SignatureInvalid")
    try:
        Ed25519PublicKey.from_public_bytes(keys[0]).verify(sig, domain + obj[:length - 64])
    except (InvalidSignature, ValueError):
        raise Reject("SignatureInvalid")


def prefix(b, magic):
    if b[:min(4, len(b))] != magic[:min(4, len(b))]:
        raise Reject("BadMagic")


def declared_length(obj, shortest):
    """The object's length at offset 6: from `shortest` to 1024, and all present."""
    n = u16(obj, 6)
    if not shortest <= n <= 1024:
        raise Reject("BadLength")
    if len(obj) < n:
        raise Reject("Truncated")
    return n


def image_header(f, trusted, named_digest=None):
    """Header validation, in order. `named_digest`: the digest a delta header names for
    the target header it carries, checked as soon as the whole header is present."""
    prefix(f, b"OTAI")
    if len(f) >= 6 and u16(f, 4) != 1:
        raise Reject("UnsupportedVersion")
    if len(f) < 8:
        raise Reject("Truncated")
    h = declared_length(f, 256)
    if named_digest is not None and hashlib.sha256(f[:h]).digest() != named_digest:
        raise Reject("DeltaTargetMismatch")
    if u32(f, 8) & 0xFFFF:
        raise Reject("UnknownCriticalFlag")
    hdr = {
        "device_type": padded(f[0x10:0x30], valid_name, "InvalidField(DeviceType)"),
        "version": version(f[0x30:0x50]),
        "chip": u16(f, 0x0C),
        "counter": u64(f, 0x50),
        "image_size": u32(f, 0x60),
        "payload_size": u32(f, 0x64),
        "payload_sha": f[0x68:0x88],
        "image_sha": f[0x88:0xA8],
        "h": h,
        "digest": hashlib.sha256(f[:h]).digest(),
    }
    method, wlog = f[0x0E], f[0x0F]
    if ((method, wlog) != (0, 0) and not (method == 1 and 10 <= wlog <= 31)
            and not (method == 2 and 10 <= wlog <= 25)):
        raise Reject("InvalidField(Compression)")
    if not 0 < hdr["image_size"] <= MAX_IMAGE or not 0 < hdr["payload_size"] <= MAX_PAYLOAD:
        raise Reject("InvalidField(Sizes)")
    if method == 0 and (hdr["payload_size"] != hdr["image_size"]
                        or hdr["payload_sha"] != hdr["image_sha"]):
        raise Reject("InvalidField(Sizes)")
    check_signature(f, h, 0xA8, IMAGE_DOMAIN, trusted)
    return hdr


def image_expectations(hdr, manifest, device_type, chip):
    """Step 11 of header validation."""
    if device_type is not None and hdr["device_type"] != device_type:
        raise Reject("WrongDeviceType")
    if chip is not None and hdr["chip"] != chip:
        raise Reject("WrongChip")
    if manifest is not None:
        if (hdr["digest"] != manifest["header_sha"]
                or hdr["h"] + hdr["payload_size"] != manifest["file_size"]):
            raise Reject("ManifestImageMismatch")
        for field, mfield, name in [("device_type", "device_type", "DeviceType"),
                                    ("chip", "chip", "Chip"), ("version", "version", "Version"),
                                    ("counter", "counter", "SecurityCounter"),
                                    ("image_size", "image_size", "ImageSize")]:
            if hdr[field] != manifest[mfield]:
                raise Reject(f"ManifestFieldMismatch({name})")


def verify_image(f, trusted, manifest=None, device_type=None, chip=None):
    hdr = image_header(f, trusted)
    image_expectations(hdr, manifest, device_type, chip)
    end = hdr["h"] + hdr["payload_size"]
    if len(f) > end:
        raise Reject("TrailingBytes")
    if len(f) < end:
        raise Reject("Truncated")
    if hashlib.sha256(f[hdr["h"]:]).digest() != hdr["payload_sha"]:
        raise Reject("PayloadDigestMismatch")
    return hdr


def verify_delta(f, trusted, base=None, manifest=None, device_type=None, chip=None):
    """Delta validation, in order; `base` is the running image's (size, SHA-256)."""
    prefix(f, b"OTAD")
    if len(f) >= 6 and u16(f, 4) != 1:
        raise Reject("UnsupportedVersion")
    if len(f) < 8:
        raise Reject("Truncated")
    d = declared_length(f, 256)
    if u32(f, 8) & 0xFFFF:
        raise Reject("UnknownCriticalFlag")
    device = padded(f[0x10:0x30], valid_name, "InvalidField(DeviceType)")
    encoding = f[0x0E]
    if encoding not in (2, 3) or not 10 <= f[0x0F] <= 25:
        raise Reject("InvalidField(Compression)")
    base_size, payload_size = u32(f, 0x30), u32(f, 0x34)
    if not 0 < base_size <= MAX_IMAGE or not 0 < payload_size <= MAX_PAYLOAD:
        raise Reject("InvalidField(Sizes)")
    # Encoding 3 only: the stream size at 0xA0 (encoding 2 leaves it to the extension area).
    if encoding == 3 and not 0 < u32(f, 0xA0) <= MAX_STREAM:
        raise Reject("InvalidField(Sizes)")
    check_signature(f, d, 0x98, DELTA_DOMAIN, trusted)
    chip_id = u16(f, 0x0C)
    if device_type is not None and device != device_type:
        raise Reject("WrongDeviceType")
    if chip is not None and chip_id != chip:
        raise Reject("WrongChip")
    if base is not None and base != (base_size, f[0x38:0x58]):
        raise Reject("DeltaBaseMismatch")
    if manifest is not None and f[0x58:0x78] != manifest["header_sha"]:
        raise Reject("ManifestImageMismatch")
    target = image_header(f[d:], trusted, named_digest=f[0x58:0x78])
    if target["device_type"] != device or target["chip"] != chip_id:
        raise Reject("DeltaTargetMismatch")
    image_expectations(target, manifest, device_type, chip)
    start = d + target["h"]
    if len(f) > start + payload_size:
        raise Reject("TrailingBytes")
    if len(f) < start + payload_size:
        raise Reject("Truncated")
    if hashlib.sha256(f[start:]).digest() != f[0x78:0x98]:
        raise Reject("PayloadDigestMismatch")


# --- Delta encoding 3: the difference stream (FORMAT.md, "Delta encoding 3") ---

MASK32 = 0xFFFFFFFF


def sext12(f):
    return (f - 4096 if f >= 2048 else f) & MASK32


# Per pair type: field(w), put(f), mask.
PAIR_TYPES = {
    "I": (lambda w: w >> 20, lambda f: f << 20, 0xFFF00000),
    "S": (lambda w: ((w >> 25) << 5) | ((w >> 7) & 0x1F),
          lambda f: ((f >> 5) << 25) | ((f & 0x1F) << 7), 0xFE000F80),
}


def pair_type(b0, b1):
    """"I", "S" or None: whether the base words b0, b1 form an address pair."""
    rd = (b0 >> 7) & 0x1F
    if b0 & 0x7F not in (0x17, 0x37) or rd == 0 or (b1 >> 15) & 0x1F != rd:
        return None
    op = b1 & 0x7F
    if op in (0x67, 0x03) or (op == 0x13 and (b1 >> 12) & 7 == 0):
        return "I"
    return "S" if op == 0x23 else None


def apply_add_run(base_run, diff_run):
    """The target bytes of one add run: byte-wise sums, then each address pair the walk
    over the base bytes finds (from the run's first byte) by the pair rule."""
    n = len(base_run)
    out = bytearray((d + b) & 0xFF for d, b in zip(diff_run, base_run))
    i = 0
    while n - i >= 2:
        if base_run[i] & 3 != 3:
            i += 2
            continue
        kind = None
        if n - i >= 8:
            b0, b1 = u32(base_run, i), u32(base_run, i + 4)
            kind = pair_type(b0, b1)
        if kind is None:
            i += 4
            continue
        field, put, mask = PAIR_TYPES[kind]
        d0, d1 = u32(diff_run, i), u32(diff_run, i + 4)
        value = ((b0 & 0xFFFFF000) + sext12(field(b1))) & MASK32
        delta = (d0 & 0xFFFFF000) | field(d1)
        v = (value + delta) & MASK32
        low = v & 0xFFF
        high = (v - sext12(low)) & MASK32
        t0 = high | ((b0 ^ d0) & 0xFFF)
        t1 = put(low) | ((b1 ^ d1) & ~mask & MASK32)
        out[i:i + 8] = t0.to_bytes(4, "little") + t1.to_bytes(4, "little")
        i += 8
    return bytes(out)


class Control:
    """The control area, read as LEB128 values."""

    def __init__(self, data):
        self.data, self.at = data, 0

    def leb128(self, first):
        """A value of at most 5 bytes (the fifth at most 0x0F); `first` says whether the
        record starts here (the area ending then is ControlEnds, not BadRecord)."""
        value = 0
        for index in range(5):
            if self.at == len(self.data):
                raise Reject("ControlEnds" if first and index == 0 else "BadRecord")
            byte = self.data[self.at]
            self.at += 1
            if index == 4 and byte > 0x0F:
                raise Reject("BadRecord")
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                return value
        raise Reject("BadRecord")


def apply_stream(stream, base, image_size):
    """The target a difference stream gives, or Reject with the first broken rule."""
    control_offset = -(-image_size // 4096) * 4096
    if len(stream) < control_offset:
        raise Reject("StreamTooShort")
    control = Control(stream[control_offset:])
    target = bytearray()
    t = p = 0
    while t < image_size:
        add_len = control.leb128(first=True)
        copy_len = control.leb128(first=False)
        z = control.leb128(first=False)
        seek = (z >> 1) ^ -(z & 1)
        if p + add_len > len(base):
            raise Reject("BeyondBase")
        if t + add_len + copy_len > image_size:
            raise Reject("BeyondImage")
        target += apply_add_run(base[p:p + add_len], stream[t:t + add_len])
        t, p = t + add_len, p + add_len
        target += stream[t:t + copy_len]
        t += copy_len
        if not 0 <= p + seek <= len(base):
            raise Reject("SeekOutsideBase")
        p += seek
    if control.at != len(control.data):
        raise Reject("TrailingControl")
    return bytes(target)


def verify_manifest(m, trusted):
    prefix(m, b"OTAM")
    if len(m) < 8:
        raise Reject("Truncated")
    if u16(m, 4) != 1:
        raise Reject("UnsupportedVersion")
    n = declared_length(m, 368)
    if len(m) > n:
        raise Reject("TrailingBytes")
    flags = u32(m, 8)
    if flags & 0xFFFC:
        raise Reject("UnknownCriticalFlag")
    out = {
        "device_type": padded(m[0x10:0x30], valid_name, "InvalidField(DeviceType)"),
        "channel": padded(m[0x30:0x40], valid_name, "InvalidField(Channel)"),
        "version": version(m[0x40:0x60]),
        "chip": u16(m, 0x0C),
        "rollout": u16(m, 0x0E),
        "counter": u64(m, 0x60),
        "sequence": u64(m, 0x68),
        "not_after": u64(m, 0x78),
        "file_size": u32(m, 0x80),
        "image_size": u32(m, 0x84),
        "header_sha": m[0x88:0xA8],
        "allow_downgrade": bool(flags & 1),
        "min_version": None,
    }
    if flags & 2:
        out["min_version"] = version(m[0xA8:0xC8])
    elif any(m[0xA8:0xC8]):
        raise Reject("InvalidField(Version)")
    padded(m[0xC8:0x128], valid_image_name, "InvalidField(ImageName)")
    if out["rollout"] > 10000:
        raise Reject("InvalidField(Rollout)")
    if not 0 < out["image_size"] <= MAX_IMAGE:
        raise Reject("InvalidField(Sizes)")
    if not 257 <= out["file_size"] <= 1024 + MAX_PAYLOAD:
        raise Reject("InvalidField(Sizes)")
    check_signature(m, n, 0x128, MANIFEST_DOMAIN, trusted)
    return out


def rollout_bucket(header_sha, device_id):
    d = hashlib.sha256(ROLLOUT_DOMAIN + header_sha + device_id).digest()
    return int.from_bytes(d[:4], "little") % 10000


def decide(m, dev):
    running = parse_version(dev["running_version"])
    if m["device_type"] != dev["device_type"].encode():
        raise Reject("WrongDeviceType")
    if m["chip"] != dev["chip"]:
        raise Reject("WrongChip")
    if m["channel"] != dev["channel"].encode():
        raise Reject("WrongChannel")
    now = dev.get("now")
    if m["not_after"] and now is not None and now > m["not_after"]:
        raise Reject("Expired")
    last = dev.get("last_sequence")
    if last is not None and m["sequence"] < last:
        raise Reject("SequenceRollback")
    if version_key(m["version"]) == version_key(running):
        return "UpToDate"
    if m["counter"] < dev["security_counter"]:
        raise Reject("CounterRollback")
    if version_key(m["version"]) < version_key(running) and not m["allow_downgrade"]:
        raise Reject("Downgrade")
    if m["min_version"] is not None and version_key(running) < version_key(m["min_version"]):
        raise Reject("BelowMinimumVersion")
    if m["image_size"] > dev["slot_size"]:
        raise Reject("TooLarge")
    bucket = rollout_bucket(m["header_sha"], bytes.fromhex(dev["device_id"]))
    if bucket >= m["rollout"]:
        return f"NotInRollout {{ bucket: {bucket}, rollout: {m['rollout']} }}"
    return "Install"


def descriptor(b):
    if len(b) < DESC_LEN:
        raise Reject("Truncated")
    b = b[:DESC_LEN]
    if b[:16] != DESC_MAGIC:
        raise Reject("BadMagic")
    if b[16] != 1:
        raise Reject("UnsupportedVersion")
    n = b[17]
    if not 1 <= n <= 8 or b[18:20] != b"\0\0" or any(b[20 + 32 * n:]):
        raise Reject("BadDescriptor")
    return [b[20 + 32 * i:52 + 32 * i] for i in range(n)]


def find_descriptor(fw):
    found, start = None, 0
    while (at := fw.find(DESC_MAGIC, start)) >= 0:
        start = at + 16
        try:
            keys = descriptor(fw[at:])
        except Reject:
            continue
        if found is not None and found != keys:
            raise Reject("AmbiguousDescriptor")
        found = keys
    return found


def run(entry, base, trusted):
    data = open(os.path.join(base, entry["file"]), "rb").read()
    kind = entry["kind"]
    if kind == "image":
        manifest = None
        if "manifest" in entry:
            manifest = verify_manifest(open(os.path.join(base, entry["manifest"]), "rb").read(),
                                       trusted)
        dt = entry.get("expect_device_type")
        verify_image(data, trusted, manifest, dt.encode() if dt else None,
                     entry.get("expect_chip"))
        return "valid"
    if kind == "delta":
        manifest = None
        if "manifest" in entry:
            manifest = verify_manifest(open(os.path.join(base, entry["manifest"]), "rb").read(),
                                       trusted)
        running = None
        if "base" in entry:
            b = open(os.path.join(base, entry["base"]), "rb").read()
            running = (len(b), hashlib.sha256(b).digest())
        dt = entry.get("expect_device_type")
        verify_delta(data, trusted, running, manifest, dt.encode() if dt else None,
                     entry.get("expect_chip"))
        return "valid"
    if kind == "diff":
        b = open(os.path.join(base, entry["base"]), "rb").read()
        target = apply_stream(data, b, entry["image_size"])
        if target != open(os.path.join(base, entry["target"]), "rb").read():
            return "wrong target"
        return "valid"
    if kind == "manifest":
        m = verify_manifest(data, trusted)
        return decide(m, entry["device"]) if "device" in entry else "valid"
    keys = descriptor(data) if kind == "descriptor" else find_descriptor(data)
    if keys is None:
        return "None"
    if [k.hex() for k in keys] != entry["keys"]:
        return "wrong keys"
    return "valid"


def main():
    path = sys.argv[1]
    base = os.path.dirname(os.path.abspath(path))
    index = json.load(open(path))
    trusted = [bytes.fromhex(k) for k in index["trusted_keys"]]
    agree = 0
    for name, key in index["keys"].items():
        public = bytes.fromhex(key["public"])
        if hashlib.sha256(public).digest()[:8].hex() != key["key_id"]:
            print(f"key {name}: key id differs")
            agree -= 1
    for r in index["rollout_buckets"]:
        got = rollout_bucket(bytes.fromhex(r["image_header_sha256"]), bytes.fromhex(r["device_id"]))
        if got != r["bucket"]:
            print(f"rollout {r['device_id']}: bucket {got}, expected {r['bucket']}")
            agree -= 1
    for entry in index["vectors"]:
        try:
            got = run(entry, base, trusted)
        except Reject as e:
            got = str(e)
        if got == entry["expect"]:
            agree += 1
        else:
            print(f"{entry['file']}: got {got}, expected {entry['expect']} ({entry.get('attack')})")
    total = len(index["vectors"])
    print(f"{agree}/{total} vectors agree")
    return 0 if agree == total else 1


if __name__ == "__main__":
    sys.exit(main())
