#!/usr/bin/env python3
# Writes the seed corpus of script/fuzz (Tests/Fuzz/corpus): one file per
# input, first byte the entry point (see FuzzEntry.swift), then the bytes the
# kernel would hand it. The valid seeds are built as on the wire (checksums
# right, payloads our probes' encoding), so the fuzzer starts at the deep
# paths; the rest are the classic broken forms. Rerun to regenerate.
import os, struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
RAW4, RAW6, DGRAM4, DGRAM6, ERRQ4, ERRQ6, SOCKADDR, PAYLOAD = range(8)
LOCAL4, TARGET4, ROUTER4 = bytes([192, 0, 2, 10]), bytes([192, 0, 2, 1]), bytes([198, 51, 100, 1])
LOCAL6 = bytes.fromhex("20010db8000000000000000000000010")
TARGET6 = bytes.fromhex("20010db8000000000000000000000001")
ROUTER6 = bytes.fromhex("20010db8000000000000000000000099")

def checksum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def payload(run=0xDEADBEEF00000001, target=0, seq=7, size=56):
    # Fields, both send times and a tag (any value: the parser and codec do
    # not know the key; the engine checks tags), then the padding pattern.
    b = b"PGEM" + struct.pack("!QIQqqQ", run, target, seq, 1000000000000, 1764100000123456789, 0x0123456789ABCDEF)
    return b + bytes(i & 0xFF for i in range(48, max(size, 48)))

def icmp(type_, code, rest, body):
    m = bytearray([type_, code, 0, 0]) + rest + body
    struct.pack_into("!H", m, 2, checksum(bytes(m)))
    return bytes(m)

def echo(type_, ident, seq, body):
    return icmp(type_, 0, struct.pack("!HH", ident, seq), body)

def ipv4(src, dst, body, total=None, proto=1):
    h = bytearray([0x45, 0]) + struct.pack("!H", total if total is not None else 20 + len(body))
    h += bytes([0x12, 0x34, 0x40, 0, 64, proto, 0, 0]) + src + dst
    struct.pack_into("!H", h, 10, checksum(bytes(h)))
    return bytes(h) + body

def ipv6(src, dst, body, plen=None, nh=58):
    return bytes([0x60, 0, 0, 0]) + struct.pack("!HBB", plen if plen is not None else len(body), nh, 64) + src + dst + body

def ext_error(origin, type_, code, offender, errno=113):
    b = struct.pack("<I", errno) + bytes([origin, type_, code, 0]) + bytes(8)
    if offender is None: return b + bytes(16)
    if len(offender) == 4: return b + struct.pack("<H", 2) + bytes(2) + offender + bytes(8)
    return b + struct.pack("<H", 10) + bytes(6) + offender + bytes(4)

def errq(sel, ext, quoted):
    return bytes([sel, len(ext)]) + ext + quoted

p = payload()
sent4 = ipv4(LOCAL4, TARGET4, echo(8, 0x1234, 7, p))
sent6 = ipv6(LOCAL6, TARGET6, echo(128, 0x1234, 7, p))
reply4 = ipv4(TARGET4, LOCAL4, echo(0, 0x1234, 7, p))
seeds = {
    "raw4-reply": bytes([RAW4]) + reply4,
    "raw4-reply-min-payload": bytes([RAW4]) + ipv4(TARGET4, LOCAL4, echo(0, 0x1234, 9, payload(size=48))),
    "raw4-reply-other-id": bytes([RAW4]) + ipv4(TARGET4, LOCAL4, echo(0, 0x4321, 7, p)),
    "raw4-reply-zeroed": bytes([RAW4]) + ipv4(TARGET4, LOCAL4, echo(0, 0x1234, 7, bytes(56))),
    "raw4-reply-truncated": bytes([RAW4]) + reply4[:40],
    "raw4-reply-bad-checksum": bytes([RAW4]) + reply4[:22] + b"\xff\xff" + reply4[24:],
    "raw4-reply-long-totlen": bytes([RAW4]) + ipv4(TARGET4, LOCAL4, echo(0, 0x1234, 7, p), total=1500),
    "raw4-reply-short-totlen": bytes([RAW4]) + ipv4(TARGET4, LOCAL4, echo(0, 0x1234, 7, p), total=21),
    "raw4-request": bytes([RAW4]) + sent4,
    "raw4-udp": bytes([RAW4]) + ipv4(TARGET4, LOCAL4, bytes(16), proto=17),
    "raw4-header-only": bytes([RAW4]) + ipv4(TARGET4, LOCAL4, b""),
    "raw4-timeexceeded-28": bytes([RAW4]) + ipv4(ROUTER4, LOCAL4, icmp(11, 0, bytes(4), sent4[:28])),
    "raw4-unreachable-full": bytes([RAW4]) + ipv4(ROUTER4, LOCAL4, icmp(3, 1, bytes(4), sent4)),
    "raw4-unreachable-quote-lies": bytes([RAW4]) + ipv4(ROUTER4, LOCAL4, icmp(3, 1, bytes(4), ipv4(LOCAL4, TARGET4, echo(8, 0x1234, 7, p), total=9000)[:40])),
    "raw4-unreachable-quote-short": bytes([RAW4]) + ipv4(ROUTER4, LOCAL4, icmp(3, 3, bytes(4), sent4[:24])),
    "raw4-unreachable-quotes-udp": bytes([RAW4]) + ipv4(ROUTER4, LOCAL4, icmp(3, 3, bytes(4), ipv4(LOCAL4, TARGET4, bytes(8), proto=17))),
    "raw4-redirect": bytes([RAW4]) + ipv4(ROUTER4, LOCAL4, icmp(5, 1, ROUTER4, sent4[:28])),
    "raw6-reply": bytes([RAW6]) + echo(129, 0x1234, 7, p),
    "raw6-reply-truncated": bytes([RAW6]) + echo(129, 0x1234, 7, p)[:20],
    "raw6-reply-zeroed": bytes([RAW6]) + echo(129, 0x1234, 7, bytes(56)),
    "raw6-request": bytes([RAW6]) + echo(128, 0x1234, 7, p),
    "raw6-unreachable-full": bytes([RAW6]) + icmp(1, 3, bytes(4), sent6),
    "raw6-timeexceeded-short": bytes([RAW6]) + icmp(3, 0, bytes(4), sent6[:60]),
    "raw6-toobig": bytes([RAW6]) + icmp(2, 0, struct.pack("!I", 1280), sent6),
    "raw6-unreachable-quote-lies": bytes([RAW6]) + icmp(1, 0, bytes(4), ipv6(LOCAL6, TARGET6, echo(128, 0x1234, 7, p), plen=65535)),
    "raw6-neighbour-solicitation": bytes([RAW6]) + icmp(135, 0, bytes(4), TARGET6),
    "dgram4-reply": bytes([DGRAM4]) + echo(0, 0x1234, 7, p),
    "dgram4-reply-truncated": bytes([DGRAM4]) + echo(0, 0x1234, 7, p)[:30],
    "dgram4-header-only": bytes([DGRAM4]) + echo(0, 0x1234, 7, b""),
    "dgram6-reply": bytes([DGRAM6]) + echo(129, 0x1234, 7, p),
    "dgram6-reply-padded": bytes([DGRAM6]) + echo(129, 0x1234, 7, p + bytes(8)),
    "errq4-unreachable": errq(ERRQ4, ext_error(2, 3, 1, ROUTER4), echo(8, 0x1234, 7, p)),
    "errq4-timeexceeded-8": errq(ERRQ4, ext_error(2, 11, 0, ROUTER4, errno=110), echo(8, 0x1234, 7, p)[:8]),
    "errq4-local-emsgsize": errq(ERRQ4, ext_error(1, 0, 0, None, errno=90), echo(8, 0x1234, 7, p)),
    "errq4-no-offender": errq(ERRQ4, ext_error(2, 3, 1, None)[:16], echo(8, 0x1234, 7, p)),
    "errq4-short-ext": errq(ERRQ4, ext_error(2, 3, 1, ROUTER4)[:6], echo(8, 0x1234, 7, p)),
    "errq4-v6-offender": errq(ERRQ4, ext_error(2, 3, 1, ROUTER6), echo(8, 0x1234, 7, p)),
    "errq6-unreachable": errq(ERRQ6, ext_error(3, 1, 3, ROUTER6), echo(128, 0x1234, 7, p)),
    "errq6-toobig": errq(ERRQ6, ext_error(3, 2, 0, ROUTER6, errno=90), echo(128, 0x1234, 7, p)[:40]),
    "errq6-quotes-reply": errq(ERRQ6, ext_error(3, 1, 0, ROUTER6), echo(129, 0x1234, 7, p)),
    "sockaddr-in": bytes([SOCKADDR]) + struct.pack("<H", 2) + bytes(2) + TARGET4 + bytes(8),
    "sockaddr-in6": bytes([SOCKADDR]) + struct.pack("<H", 10) + bytes(6) + TARGET6 + bytes(4),
    "cmsg-timestamp": bytes([SOCKADDR]) + struct.pack("<QiI", 32, 1, 35) + struct.pack("<qq", 1764100000, 123456789),
    "payload-56": bytes([PAYLOAD]) + p,
    "payload-48": bytes([PAYLOAD]) + payload(size=48),
    "payload-1400": bytes([PAYLOAD]) + payload(seq=1 << 40, size=1400),
    "payload-bad-padding": bytes([PAYLOAD]) + p[:50] + b"\0" + p[51:],
    "payload-short": bytes([PAYLOAD]) + p[:47],
    "empty-selector": bytes([RAW4]),
}
os.makedirs(HERE, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
print(len(seeds), "seeds in", HERE)
