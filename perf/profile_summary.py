#!/usr/bin/env python3
"""Summarise `perf script -F comm,ip,sym` output of a `perf record -g` run, per thread.

Usage: profile_summary.py SCRIPT_TXT FOLDED_OUT

Prints each thread's share of all samples, then per thread the syscalls its kernel samples
sit in (the first `__x64_sys_*` / `__do_sys_*` / `__sys_*` frame of the stack) and its
hottest user-space leaf symbols. Writes folded stacks ("comm;outer;...;leaf count" lines,
the input of any flame graph tool) to FOLDED_OUT.
"""

import collections
import sys

SYSCALL_PREFIXES = ("__x64_sys_", "__do_sys_", "__sys_")


def read_samples(path):
    """Yield (comm, [leaf frame, ..., outermost frame]) per sample."""
    comm, frames = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if comm is not None:
                    yield comm, frames
                comm, frames = None, []
            elif not line[0].isspace():
                comm, frames = line.split()[0], []
            else:
                parts = line.split(None, 1)
                frames.append(parts[1].strip() if len(parts) > 1 else "[unknown]")
    if comm is not None:
        yield comm, frames


def classify(frames):
    """The syscall a sample sits in, or 'user <leaf>' / 'kernel <leaf>'."""
    for fr in frames:
        if fr.startswith(SYSCALL_PREFIXES):
            return "syscall " + fr.split("_sys_", 1)[1]
    leaf = frames[0] if frames else "[unknown]"
    in_kernel = any(fr.startswith(("entry_SYSCALL", "asm_")) for fr in frames)
    return ("kernel " if in_kernel else "user ") + leaf


def main():
    script, folded_out = sys.argv[1], sys.argv[2]
    per_comm = collections.defaultdict(collections.Counter)
    folded = collections.Counter()
    total = 0
    for comm, frames in read_samples(script):
        total += 1
        per_comm[comm][classify(frames)] += 1
        folded[";".join([comm] + list(reversed(frames)))] += 1
    if total == 0:
        print("no samples")
        return
    with open(folded_out, "w") as f:
        for stack, n in folded.most_common():
            f.write(f"{stack.replace(' ', '_')} {n}\n")
    threads = sorted(per_comm.items(), key=lambda kv: -sum(kv[1].values()))
    print(f"{total} samples; share of mailroot's CPU by thread:")
    for comm, c in threads:
        print(f"  {100 * sum(c.values()) / total:5.1f}%  {comm}")
    for comm, c in threads:
        n = sum(c.values())
        if n < total * 0.02:
            continue
        print(f"== {comm} ({100 * n / total:.1f}% of all): share of this thread")
        for what, k in c.most_common(10):
            print(f"  {100 * k / n:5.1f}%  {what}")


if __name__ == "__main__":
    main()
