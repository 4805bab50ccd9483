#!/usr/bin/env python3
"""Stack frames of an RV32 ELF, read from its function prologues (stable Rust has no
`-Z emit-stack-sizes`): the N largest, and with --below FUNCTION the deepest chain of
direct calls under each function whose name contains FUNCTION.

A frame is what the prologue subtracts from sp: `addi sp, sp, -N` (also `c.addi16sp`)
plus `sub sp, sp, REG` with REG built by `lui`/`addi`/`li` (frames over 2 KiB). Calls are
the direct `jal`/`jalr` targets objdump names; a tail call reuses its caller's slot.
Indirect calls are not seen, and panic and formatting paths are left out of the chains
(they end the program). A static chain is an upper bound: the one qemu measures
(scripts/install-cost.sh) may not take it.

    python3 scripts/stack-frames.py ELF [--top N] [--below FUNCTION ...]

Needs riscv64-unknown-elf-objdump (Debian's binutils-riscv64-unknown-elf) or
$OBJDUMP; names are demangled by c++filt when it is installed.
"""

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys

PROLOGUE_LEN = 60  # instructions scanned for the sp adjustment
LEAVES_OUT = re.compile(r"panic|fmt|report|slice_index_fail|unwrap_failed|expect_failed")


def disassemble(elf):
    objdump = os.environ.get("OBJDUMP", "riscv64-unknown-elf-objdump")
    return subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", "-M", "no-aliases", elf],
        capture_output=True, text=True, check=True,
    ).stdout


def parse(listing):
    """Returns {function: frame bytes} and {function: {(callee, is_tail_call)}}."""
    frames, calls = {}, {}
    function, regs, seen = None, {}, 0
    for line in listing.splitlines():
        header = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if header:
            if not header.group(1).startswith(".L"):
                function, regs, seen = header.group(1), {}, 0
                frames[function], calls[function] = 0, set()
            continue
        if function is None or ":" not in line:
            continue
        text = line.split(":", 1)[1]
        ins = re.sub(r"\s+", " ", text.split("#")[0]).strip()
        target = re.search(r"\bc?\.?jalr?\b.*<([^>+]+)(\+0x[0-9a-f]+)?>", text)
        if target and target.group(1) != function and not target.group(1).startswith(".L"):
            tail = bool(re.match(r"(c\.)?jalr? zero,", ins))
            calls[function].add((target.group(1), tail))
        seen += 1
        if seen > PROLOGUE_LEN:
            continue
        if m := re.match(r"(c\.)?lui (\w+),(0x[0-9a-f]+|\d+)$", ins):
            regs[m.group(2)] = int(m.group(3), 0) << 12
        elif m := re.match(r"c\.addi16sp sp,(-?\d+)$", ins):
            frames[function] += max(0, -int(m.group(1)))
        elif m := re.match(r"(c\.)?addi (\w+),(\w+),(-?\d+)$", ins):
            dest, src, imm = m.group(2), m.group(3), int(m.group(4))
            if dest == src == "sp":
                frames[function] += max(0, -imm)
            elif src in regs:
                regs[dest] = (regs[src] + imm) & 0xFFFFFFFF
        elif m := re.match(r"(c\.)?li (\w+),(-?\d+)$", ins):
            regs[m.group(2)] = int(m.group(3)) & 0xFFFFFFFF
        elif (m := re.match(r"(c\.)?sub sp,sp,(\w+)$", ins)) and m.group(2) in regs:
            frames[function] += regs[m.group(2)]
    return frames, calls


def deepest(frames, calls):
    @functools.lru_cache(maxsize=None)
    def below(function, path):
        best, chain = 0, ()
        for callee, tail in calls.get(function, ()):
            if callee in path or callee not in frames or LEAVES_OUT.search(callee):
                continue
            depth, sub = below(callee, path + (function,))
            if tail:
                depth -= frames[function]
            if depth > best:
                best, chain = depth, sub
        return frames[function] + best, (function,) + chain

    return lambda function: below(function, ())


def demangle(names):
    if not names or not shutil.which("c++filt"):
        return names
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True)
    return out.stdout.splitlines()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("elf")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--below", action="append", default=[])
    args = parser.parse_args()
    frames, calls = parse(disassemble(args.elf))
    largest = sorted(frames.items(), key=lambda item: -item[1])[: args.top]
    for (_, size), name in zip(largest, demangle([name for name, _ in largest])):
        print(f"{size:8d}  {name}")
    chain_of = deepest(frames, calls)
    for pattern in args.below:
        roots = [name for name in frames if pattern in name]
        if not roots:
            sys.exit(f"no function named like {pattern}")
        for root in roots:
            total, chain = chain_of(root)
            print(f"\n{total:8d}  deepest direct-call chain below:")
            for size, name in zip([frames[f] for f in chain], demangle(list(chain))):
                print(f"    {size:6d}  {name}")


if __name__ == "__main__":
    main()
