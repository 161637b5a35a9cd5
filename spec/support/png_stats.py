#!/usr/bin/env python3
"""spec/support/png_stats.py PNG [NAME=X,Y,W,H ...] [#rrggbb ...]: what a
screenshot shows, as one line of JSON: its width and height, and for the
whole ("page") and each rectangle named, how many distinct colours it
has, the share of its pixels that are not white ("ink"), and how many
pixels have each colour asked for (to within 8 per channel).

A PNG decoder in the standard library alone (zlib), for the report's
browser specs: 8-bit RGB or RGBA, not interlaced, as Chromium writes its
screenshots. Anything else is an error, never a wrong answer."""
import json
import struct
import sys
import zlib


def read_png(path):
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise SystemExit('%s: not a PNG' % path)
    pos, idat, head = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            head = struct.unpack('>IIBBBBB', chunk)
        elif kind == b'IDAT':
            idat.append(chunk)
        pos += 12 + n
    width, height, depth, ctype, _, _, interlace = head
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise SystemExit('%s: only 8-bit RGB or RGBA, not interlaced (depth %d, colour type %d)'
                         % (path, depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b''.join(idat))
    stride = width * bpp
    rows, prior = [], bytearray(stride)
    mask7, mask8 = int.from_bytes(b'\x7f' * stride, 'big'), int.from_bytes(b'\x80' * stride, 'big')
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif f == 2:
            # Bytewise addition without carries between bytes, on big integers.
            a, b = int.from_bytes(line, 'big'), int.from_bytes(prior, 'big')
            line = bytearray((((a & mask7) + (b & mask7)) ^ ((a ^ b) & mask8)).to_bytes(stride, 'big'))
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prior[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                if i >= bpp:
                    a, c = line[i - bpp], prior[i - bpp]
                else:
                    a = c = 0
                b = prior[i]
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif f != 0:
            raise SystemExit('%s: bad filter %d in row %d' % (path, f, y))
        rows.append(bytes(line))
        prior = line
    return width, height, bpp, rows


def stats(rows, bpp, x, y, w, h, wanted):
    counts = {}
    for row in rows[y:y + h]:
        for i in range(x * bpp, min(len(row), (x + w) * bpp), bpp):
            px = row[i:i + 3]
            counts[px] = counts.get(px, 0) + 1
    total = sum(counts.values())
    white = sum(n for px, n in counts.items() if min(px) >= 250)
    has = {}
    for colour in wanted:
        r, g, b = (int(colour[k:k + 2], 16) for k in (1, 3, 5))
        has[colour] = sum(n for px, n in counts.items()
                          if abs(px[0] - r) <= 8 and abs(px[1] - g) <= 8 and abs(px[2] - b) <= 8)
    return {'pixels': total, 'colours': len(counts), 'ink': 1 - white / total if total else 0, 'has': has}


def main():
    path = sys.argv[1]
    wanted = [a for a in sys.argv[2:] if a.startswith('#')]
    width, height, bpp, rows = read_png(path)
    out = {'width': width, 'height': height, 'page': stats(rows, bpp, 0, 0, width, height, wanted)}
    for a in sys.argv[2:]:
        if '=' in a:
            name, box = a.split('=', 1)
            x, y, w, h = (int(float(v)) for v in box.split(','))
            out[name] = stats(rows, bpp, x, y, w, h, wanted)
    print(json.dumps(out))


main()
