#!/usr/bin/env python3
"""Write a deterministic build context for bench/build.sh.

usage: gen_context.py DIR [FILES] [TOTAL_MB]

The same arguments give byte-identical trees on any machine (seeded generator, no time or
host input). The mix is meant to look like a real source tree plus some assets: many small
text-like files (compressible) in nested directories, and a few multi-MB files, half of them
incompressible. Defaults: 20,000 files, about 300 MB.
"""

import os
import random
import sys

SEED = 20240603
BIG_FILES = 30          # multi-MB files; the rest are small
WORDS = (
    "kiln layer image digest cache build copy run step config manifest blob tar zstd "
    "overlay sandbox namespace mount process network container project scratch host "
    "binary path context store index key hash parallel job report verify export import"
).split()


def text_pool(rng, size):
    """About `size` bytes of word salad with newlines: compresses like source code."""
    out, length = [], 0
    while length < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))) + "\n"
        out.append(line)
        length += len(line)
    return "".join(out).encode()


def main():
    root = sys.argv[1]
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    total = int(float(sys.argv[3]) * 1e6) if len(sys.argv) > 3 else 300_000_000
    rng = random.Random(SEED)
    pool = text_pool(rng, 1 << 20)
    big = min(BIG_FILES, files // 10)
    small = files - big
    # Small files: log-uniform 64 B .. 32 KiB (mean about 5 KiB).
    small_sizes = [int(64 * (512 ** rng.random())) for _ in range(small)]
    big_budget = max(total - sum(small_sizes), big)
    weights = [rng.uniform(0.5, 1.5) for _ in range(big)]
    big_sizes = [int(big_budget * w / sum(weights)) for w in weights]
    written = 0
    for i, size in enumerate(small_sizes):
        # 20 top dirs x 25 sub dirs x 2 leaf dirs: 1,000 leaf dirs, 3 levels deep.
        d = os.path.join(root, f"d{i % 20:02}", f"s{(i // 20) % 25:02}", f"l{(i // 500) % 2}")
        os.makedirs(d, exist_ok=True)
        start = rng.randrange(len(pool) - size)
        with open(os.path.join(d, f"f{i:05}.txt"), "wb") as f:
            f.write(pool[start:start + size])
        written += size
    assets = os.path.join(root, "assets")
    os.makedirs(assets, exist_ok=True)
    for i, size in enumerate(big_sizes):
        if i % 2:   # incompressible
            data = rng.randbytes(size)
        else:       # repetitive text
            data = (pool * (size // len(pool) + 1))[:size]
        with open(os.path.join(assets, f"blob{i:02}.bin"), "wb") as f:
            f.write(data)
        written += size
    print(f"{files} files, {written / 1e6:.1f} MB in {root}")


if __name__ == "__main__":
    main()
