"""Missing-call groups: which variants' missing-call groups a node reports unique in a job.

The rule
--------
An exact PLINK-style regression fits each variant on the samples with a
called genotype, so for every variant released that way the federation sums
over the variant's *missing-call group*: the samples of the job's cohort with
a missing call at that variant. A group of one person gives that person's
values directly, and two released sums over groups that differ by one person
give them when subtracted. With ``d = min_count - 1``, no group of 1 to ``d``
samples, and no two groups that differ by 1 to ``d`` samples, may be released
in one job.

The federation decides per variant from every node's report: a variant's sums
over its called samples are released exactly only if its federation-wide
missing-call group is empty or some node reports the variant *unique*. This
module is the node's part. :class:`MissingGroups` holds the groups a node has
filed in a job. Block by block, in the job's variant order, it reports a
variant unique if its group at the node has at least ``min_count`` samples
and differs by more than ``d`` samples from every group filed before it (in
earlier blocks or earlier in the same block); an identical group (distance 0)
is not unique. Then it files the group: every non-empty group is filed,
whatever its size and whether or not it was unique (an identical copy of a
filed group is not stored again). Empty groups are never unique and never
filed.

Why each node's part is enough
------------------------------
A node cannot see the other nodes' groups, nor which variants the federation
releases. Nodes hold disjoint samples, so a federation group is the disjoint
union of the nodes' groups, and the symmetric difference of two federation
groups is the disjoint union of the nodes' symmetric differences: each is at
least as large as its piece at any one node.

A variant released exactly with a non-empty group is unique at some node,
where its group has at least ``min_count`` samples, so its federation group
has too. Take two variants released that way, ``v`` before ``w``, and a node
``l`` that reports ``w`` unique. If ``v``'s group at ``l`` is non-empty, it
was filed before ``w`` was checked (every non-empty group is), so the two
differ at ``l`` by more than ``d`` samples; if it is empty, they differ at
``l`` by ``w``'s whole group there, at least ``min_count`` samples. Either
way their federation groups differ by more than ``d`` samples. A variant
released with an empty group differs from one released with a non-empty
group by that group, at least ``min_count`` samples, and from another with an
empty group by nothing. So every released group has 0 or at least
``min_count`` samples, and any two are identical (both empty) or more than
``d`` apart, whichever variants the federation releases: a node files every
group, not only those released, so it needs to know none of the decisions.

The algorithm
-------------
A group is the sorted array of its members' column indices. Call a group of
1 to ``d`` samples *small* and one of at least ``d + 1 = min_count`` samples
*large*. A small group is never unique: it is filed without a search. For a
large group A, a check looks for a filed group B with ``|A ^ B| <= d`` and
stops at the first one found: A is then not unique. Four indexes file the
groups under keys, so that A finds every such B by looking up its own keys:

*Whole index* (every group). A group is filed under one key, of all its
members. A group identical to a filed one finds it there with one look-up:
it is not unique, and it is not stored again (nor searched further, if
large). So the filed groups are distinct, and a B found by the other
indexes is 1 to ``d`` from A.

*Part index* (large groups). The samples are split into ``d + 1`` parts of
equal size (give or take one) by a fixed random map. A group is filed under
``d + 1`` keys, one per part: the set of its members in that part. The at most
``d`` samples of ``A ^ B`` lie in at most ``d`` parts, so A and B have the
same members in some part, hence a key in common (pigeonhole). This index is
specific when every part holds several members of a group: large groups of
scattered samples, as at 1% or 5% missing calls.

*Prefix index* (large groups, kept while it pays). The samples are ranked:
those in more than ``FREQUENT`` times as many large filed groups as the
average sample last, by frequency, and the others in a fixed random order. A
group's prefix is its ``2 + e`` lowest-ranked members (or all), where ``e``
is the most members it can lack of a large group within ``d`` of it: ``d``,
or ``(s - 1) // 2`` for a group of ``s <= 2 d`` samples (as the other group
has at least ``d + 1``). The group is filed under each pair of prefix
members. Two large groups A and B within ``d`` share at least
``(s + t - d) / 2 >= (d + 2) / 2`` members, so two as ``d >= 1``; let ``p``
and ``q`` be the two lowest-ranked shared ones. Below ``q`` in A's ranking
lie only ``p`` and members of ``A - B``, at most ``e`` of them, so ``p`` and
``q`` are in A's prefix, and likewise in B's: the pair ``(p, q)`` is a key of
both. Both groups must be large, so small groups are not filed here. This
index is specific for groups of a few samples, and for groups that are a
common core (a failed genotyping plate, poorly genotyped samples) plus a few
other samples, as the core's samples rank last. With ``d`` above
``MAX_PAIR_D``, single prefix members replace pairs (``1 + e`` of them,
``d + 1`` keys rather than ``(d + 2)(d + 1) / 2``): the lowest-ranked shared
member is in both prefixes.

*Element index* (small groups). A small group is filed under each of its
members. A small group B within ``d`` of a large group A of ``s`` samples
has ``t >= s - d`` samples, so only a group of ``d + 1`` to ``2 d`` samples
can have one, and it shares at least ``(s + t - d) / 2 >= s - d >= 1``
members with it: ``A - B`` has at most ``d`` members, and any ``d + 1``
members of A include one of B. So A reads the lists of its ``d + 1`` members
whose lists are shortest, and finds every small B within ``d`` of it.

The prefix index is built (every large filed group filed in it) once the
part index has had ``PREFIXES_AFTER`` entries per large filed group under the
keys of the groups checked since the last decision. Each time the large filed
groups have doubled since, it is reviewed: dropped if it saved fewer than
``PREFIX_SAVING`` entries read per check, else refiled if the ranking
changed. Each build follows work at least proportional to it, or a doubling,
so building costs at most a constant factor.

For each large group, the lengths of the lists under its keys in each index
are known before any is read: of the part and prefix indexes, the one with
fewer entries is read, and that one and the element index are read in order
of their entries. Keys are 64-bit XORs of random salts of samples, of which a
table keeps 32 bits: keys that agree on those share a list, which costs
comparisons and nothing else.

Each candidate is verified exactly: the size window ``|s - t| <= d``, then a
256-bit fingerprint (one bit per member, at a fixed random position; the
popcount of the XOR of two fingerprints is a lower bound on the distance),
then a merge of the sorted members that stops once ``d`` is exceeded. A
variant is reported unique if and only if its group has at least
``min_count`` members and lies more than ``d`` from every filed group: no
filed group within ``d`` is missed, and none is reported within ``d`` that is
not. The random maps (``seed``), the ranking and whether the prefix index is
kept change the running time only, never a report.

Cost and memory
---------------
With random missing calls a check costs about the group's size, one look-up
in the whole index and, for a large group, ``d + 1`` in the part index (up
to ``(d + 2)(d + 1) / 2`` more while the prefix index is kept), one per
member in the element index for a group of ``d + 1`` to ``2 d`` samples, and
a few candidates; ``bench/missing_groups.py`` measures it. Inputs that defeat
the indexes fall back to long lists, whose entries cost tens of nanoseconds
each, and the work then grows with the square of the number of such
variants: most groups a shared core plus at most ``d`` other samples, or
groups of ``d + 1`` samples among many small groups that share a sample.
With ``min_count`` above ``MAX_PAIR_D + 1`` the prefix index, of single
members, is far less specific. Memory is 2 bytes per member of a filed group
(4 beyond 65,536 samples), about 50 bytes per group, 13 to 26 bytes per key
in the tables, and 8 to 30 bytes per entry of lists longer than one (the most
in short lists), with arrays grown by half when full. A :class:`MissingGroups`
is not thread-safe; its compiled loops release the GIL.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from numba import njit

from genofed.errors import InputError

__all__ = ["MissingGroups"]

# When the prefix index is built, reviewed and dropped (see above).
PREFIXES_AFTER = 32  # part-index entries under checked groups' keys, per large filed group
PREFIX_SAVING = 2  # entries read per check that the prefix index must save to be kept
FREQUENT = 8  # a sample in this many times as many groups as the average one is ranked last
MAX_PAIR_D = 10  # above this min_count - 1, the prefix index files single members
SEGMENT = 64  # the largest segment of a list (segments double from 2)
FINGERPRINT_WORDS = 4  # 256 bits per group

# Counters of a MissingGroups, shared with the compiled loops: the filed
# groups and their members, the large ones and theirs, and the work done.
# PART_COST, READ_COST and CHECKS count since the last decision on the prefix index.
(
    GROUPS, MEMBERS, LARGE, LARGE_MEMBERS, STAMP, PREFIX_READS, CANDIDATES,
    PART_COST, READ_COST, CHECKS,
) = range(10)  # fmt: skip

ONES = np.uint64(0x0101010101010101)
BYTE_INDEX = np.uint64(0x0001020304050607)  # (1 << 8k) * BYTE_INDEX >> 56 == k

Scalar = TypeVar("Scalar", bound=np.generic)
# The cast to int64 in compiled code (where numba mixes uint64 and int64 into
# float64), typed loosely so that mypy leaves numba's integer rules alone.
_int: Any = np.int64


@njit(cache=True, nogil=True)
def _block_members(
    flat: npt.NDArray[np.uint8], n_variants: int, n_samples: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """Column indices of the nonzero bytes of a C-ordered ``(variants, samples)`` block.

    Returns the members of all rows, concatenated in row order and sorted
    within each row, and the row offsets (``n_variants + 1``). Eight bytes are
    read at a time; a zero word (eight called samples) costs one comparison.
    """
    total = flat.size
    n_words = total // 8
    words = flat[: n_words * 8].view(np.uint64)
    count = 0
    for w in range(n_words):
        x = words[w]
        if x != 0:
            x |= x >> np.uint64(1)
            x |= x >> np.uint64(2)
            x |= x >> np.uint64(4)
            x &= ONES
            x += x >> np.uint64(8)
            x += x >> np.uint64(16)
            x += x >> np.uint64(32)
            count += _int(x & np.uint64(0xFF))
    for f in range(n_words * 8, total):
        if flat[f] != 0:
            count += 1
    members = np.empty(count, dtype=np.int32)
    starts = np.zeros(n_variants + 1, dtype=np.int64)
    j = 0
    for w in range(n_words):
        x = words[w]
        if x != 0:
            x |= x >> np.uint64(1)
            x |= x >> np.uint64(2)
            x |= x >> np.uint64(4)
            x &= ONES
            while x != 0:
                low = x & (~x + np.uint64(1))
                f = w * 8 + _int((low * BYTE_INDEX) >> np.uint64(56))
                row = f // n_samples
                members[j] = f - row * n_samples
                starts[row + 1] += 1
                j += 1
                x ^= low
    for f in range(n_words * 8, total):
        if flat[f] != 0:
            row = f // n_samples
            members[j] = f - row * n_samples
            starts[row + 1] += 1
            j += 1
    for v in range(n_variants):
        starts[v + 1] += starts[v]
    return members, starts


@njit(cache=True, nogil=True, inline="always")
def _popcount(x: np.uint64) -> int:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    bits: int = _int((x * ONES) >> np.uint64(56))
    return bits


# A key index maps 64-bit keys to lists of filed groups. The compiled loops
# take it as the tuple (table, segments, slots, used):
#   table     uint64 (capacity,): open addressing on the high 32 bits of a key
#             (with the lowest of them set, so that no held word is 0): a
#             word holds them above either a group (the list's only one) or,
#             with bit 31 set, the newest segment of the list;
#   segments  int32 (n, 5): per segment, its first slot, capacity, fill, the
#             older segment (-1 if none) and, in the newest, the list's
#             length; capacities double from 2 to SEGMENT;
#   slots     uint64: per entry its group (low 32 bits) and the group's size
#             (high 32 bits), so that the size window needs no other read;
#   used      int64 (3,): keys, segments and slots in use.
# Keys are kept to 32 bits: two keys that agree on them share a list, which
# costs comparisons and nothing else. Groups, segments and slots number less
# than 2**31.
KEYS, SEGMENTS, SLOTS = range(3)
LOW = np.uint64(0xFFFFFFFF)
MULTI = np.uint64(1 << 31)
HIGH = np.uint64(32)
MAX_LOAD = 0.625  # of a table, which then doubles
LIMIT = (1 << 31) - 1  # groups, and slots of an index


@njit(cache=True, nogil=True, inline="always")
def _tag(key: np.uint64) -> np.uint64:
    return (key >> HIGH) | np.uint64(1)


@njit(cache=True, nogil=True)
def _find(index: Any, key: np.uint64) -> int:
    """Find the table slot of ``key`` in a key index, or -1."""
    table = index[0]
    tag = _tag(key)
    mask = table.size - 1
    slot: int = _int(tag >> np.uint64(1)) & mask
    while True:
        held = table[slot]
        if held >> HIGH == tag:
            return slot
        if held == 0:
            return -1
        slot = (slot + 1) & mask


@njit(cache=True, nogil=True)
def _length(index: Any, slot: int) -> int:
    """Return the length of the list at table slot ``slot`` (0 if ``slot`` is -1)."""
    if slot < 0:
        return 0
    value = index[0][slot] & LOW
    return 1 if value & MULTI == 0 else index[1][_int(value ^ MULTI), 4]


@njit(cache=True, nogil=True)
def _has_room(index: Any, n_keys: int) -> bool:
    """Whether a key index can take ``n_keys`` more keys, whatever they are."""
    table, segments, slots, used = index
    room: bool = (
        used[KEYS] + n_keys <= MAX_LOAD * table.size
        and used[SEGMENTS] + n_keys <= segments.shape[0]
        and used[SLOTS] + n_keys * SEGMENT <= slots.size
    )
    return room


@njit(cache=True, nogil=True)
def _new_segment(index: Any, capacity: int, older: int, length: int) -> int:
    segments, used = index[1], index[3]
    new: int = used[SEGMENTS]
    used[SEGMENTS] += 1
    segments[new, 0] = used[SLOTS]
    segments[new, 1] = capacity
    segments[new, 2] = 0
    segments[new, 3] = older
    segments[new, 4] = length
    used[SLOTS] += capacity
    return new


@njit(cache=True, nogil=True)
def _append(index: Any, segment: int, group: int, group_start: np.ndarray) -> None:
    """Write ``group`` (its id and size) in the next slot of ``segment``."""
    segments, slots = index[1], index[2]
    size = group_start[group + 1] - group_start[group]
    slots[segments[segment, 0] + segments[segment, 2]] = np.uint64(group) | (
        np.uint64(size) << HIGH
    )
    segments[segment, 2] += 1
    segments[segment, 4] += 1


@njit(cache=True, nogil=True)
def _add(
    index: Any,
    slot: int,
    key: np.uint64,
    group: int,
    group_start: np.ndarray,
) -> None:
    """File ``group`` under ``key``, found at table slot ``slot`` (-1 if absent)."""
    table, segments = index[0], index[1]
    if slot < 0:
        slot = _find(index, key)  # a group with the same key twice
    tag = _tag(key)
    if slot < 0:
        mask = table.size - 1
        slot = _int(tag >> np.uint64(1)) & mask
        while table[slot] != 0:
            slot = (slot + 1) & mask
        table[slot] = (tag << HIGH) | np.uint64(group)
        index[3][KEYS] += 1
        return
    value = table[slot] & LOW
    if value & MULTI == 0:  # the list's second group: move the first into a segment
        segment = _new_segment(index, 2, -1, 0)
        _append(index, segment, _int(value), group_start)
    else:
        segment = _int(value ^ MULTI)
        if segments[segment, 2] == segments[segment, 1]:
            capacity = min(2 * segments[segment, 1], SEGMENT)
            segment = _new_segment(index, capacity, segment, segments[segment, 4])
    _append(index, segment, group, group_start)
    table[slot] = (tag << HIGH) | MULTI | np.uint64(segment)


@njit(cache=True, nogil=True)
def _rehash(table: np.ndarray, new_table: np.ndarray) -> None:
    """Move every word of a table into an empty larger one."""
    mask = new_table.size - 1
    for old in range(table.size):
        word = table[old]
        if word == 0:
            continue
        slot = _int((word >> HIGH) >> np.uint64(1)) & mask
        while new_table[slot] != 0:
            slot = (slot + 1) & mask
        new_table[slot] = word


@njit(cache=True, nogil=True)
def _prefix(
    group: np.ndarray,
    a0: int,
    a1: int,
    d: int,
    pairs: bool,
    rank: np.ndarray,
    prefix: np.ndarray,
    prefix_rank: np.ndarray,
) -> int:
    """Put the prefix of ``group[a0:a1]`` in ``prefix``, lowest rank first; return its length.

    The prefix is the ``2 + e`` (pairs) or ``1 + e`` lowest-ranked members,
    where ``e`` is the most members the group can lack of another group
    within ``d`` of it that is at least ``d + 1`` large: ``d``, or
    ``(s - 1) // 2`` for a group of ``s <= 2 d`` members.
    """
    s = a1 - a0
    size = min(s, (2 if pairs else 1) + min(d, (s - 1) // 2))
    n = 0
    for i in range(a0, a1):
        x = _int(group[i])
        r = rank[x]
        if n == size and r >= prefix_rank[n - 1]:
            continue
        k = n if n < size else size - 1
        while k > 0 and prefix_rank[k - 1] > r:
            prefix_rank[k] = prefix_rank[k - 1]
            prefix[k] = prefix[k - 1]
            k -= 1
        prefix_rank[k] = r
        prefix[k] = x
        n = min(n + 1, size)
    return n


@njit(cache=True, nogil=True)
def _prefix_keys(
    prefix: np.ndarray,
    n: int,
    pairs: bool,
    salt_low: np.ndarray,
    salt_high: np.ndarray,
    keys: np.ndarray,
) -> int:
    """Write the keys of a prefix of ``n`` members (its pairs, or its members); return how many."""
    count = 0
    if not pairs:
        for i in range(n):
            keys[count] = salt_high[prefix[i]]
            count += 1
        return count
    for i in range(n):
        for j in range(i + 1, n):
            low, high = min(prefix[i], prefix[j]), max(prefix[i], prefix[j])
            keys[count] = salt_low[low] ^ salt_high[high]
            count += 1
    return count


@njit(cache=True, nogil=True, inline="always")
def _within(
    rows: np.ndarray, a0: int, a1: int, members: np.ndarray, b0: int, b1: int, d: int
) -> bool:
    """Whether two sorted groups differ by at most ``d`` members."""
    i, j, diff = a0, b0, 0
    while i < a1 and j < b1:
        x, y = _int(rows[i]), _int(members[j])
        if x == y:
            i += 1
            j += 1
        else:
            diff += 1
            if diff > d:
                return False
            if x < y:
                i += 1
            else:
                j += 1
    near: bool = diff + (a1 - i) + (b1 - j) <= d
    return near


@njit(cache=True, nogil=True, inline="always")
def _far(fingerprint: np.ndarray, other: np.ndarray, d: int) -> bool:
    """Whether two fingerprints differ in more than ``d`` bits (then so do their groups)."""
    bits = 0
    for w in range(FINGERPRINT_WORDS):
        bits += _popcount(fingerprint[w] ^ other[w])
    return bits > d


@njit(cache=True, nogil=True)
def _scan(
    index: Any,
    found: np.ndarray,
    n_keys: int,
    rows: np.ndarray,
    a0: int,
    a1: int,
    fingerprint: np.ndarray,
    members: np.ndarray,
    group_start: np.ndarray,
    fingerprints: np.ndarray,
    stamp: np.ndarray,
    d: int,
    counters: np.ndarray,
) -> bool:
    """Whether a group filed under the new group's keys is within ``d`` of it.

    ``found`` holds the table slots of the first ``n_keys`` keys (-1 where
    absent). Stops at the first group within ``d``. A group filed under
    several of the keys is compared once.
    """
    table, segments, slots = index[0], index[1], index[2]
    s = a1 - a0
    counters[STAMP] += 1
    now = counters[STAMP]
    for k in range(n_keys):
        if found[k] < 0:
            continue
        value = table[found[k]] & LOW
        if value & MULTI == 0:
            counters[CANDIDATES] += 1
            g = _int(value)
            b0, b1 = group_start[g], group_start[g + 1]
            if abs((b1 - b0) - s) > d or stamp[g] == now or _far(fingerprint, fingerprints[g], d):
                continue
            stamp[g] = now
            if _within(rows, a0, a1, members, b0, b1, d):
                return True
            continue
        segment = _int(value ^ MULTI)
        counters[CANDIDATES] += segments[segment, 4]
        while segment >= 0:
            p0 = segments[segment, 0]
            for p in range(p0, p0 + segments[segment, 2]):
                if abs(_int(slots[p] >> HIGH) - s) > d:
                    continue
                g = _int(slots[p] & LOW)
                if stamp[g] == now or _far(fingerprint, fingerprints[g], d):
                    continue
                stamp[g] = now
                if _within(rows, a0, a1, members, group_start[g], group_start[g + 1], d):
                    return True
            segment = segments[segment, 3]
    return False


@njit(cache=True, nogil=True)
def _shortest(found: np.ndarray, length: np.ndarray, n: int, k: int) -> int:
    """Move the ``k`` shortest of ``n`` lists to the front of ``found``; return their entries."""
    total = 0
    for i in range(k):
        best = i
        for j in range(i + 1, n):
            if length[j] < length[best]:
                best = j
        found[i], found[best] = found[best], found[i]
        length[i], length[best] = length[best], length[i]
        total += length[i]
    return total


@njit(cache=True, nogil=True)
def _check_rows(
    first: int,
    rows: np.ndarray,
    starts: np.ndarray,
    unique: np.ndarray,
    d: int,
    pairs: bool,
    prefixes_on: bool,
    prefixes_after: int,
    review_at: int,
    sample_part: np.ndarray,
    sample_salt: np.ndarray,
    sample_bit: np.ndarray,
    part_salt: np.ndarray,
    rank: np.ndarray,
    salt_low: np.ndarray,
    salt_high: np.ndarray,
    members: np.ndarray,
    group_start: np.ndarray,
    fingerprints: np.ndarray,
    stamp: np.ndarray,
    sample_count: np.ndarray,
    counters: np.ndarray,
    whole_index: Any,
    part_index: Any,
    prefix_index: Any,
    element_index: Any,
) -> int:
    """Check the groups ``rows[starts[v]:starts[v + 1]]`` from ``v = first``, and file them.

    Sets ``unique[v]`` for the unique groups. Returns the number of rows; or,
    before doing anything for it, the first row that needs room in an array,
    or the first large group that comes (while the prefix index is off) once
    the part index has had ``prefixes_after`` entries under the keys of the
    groups checked since the last decision, or (while it is on) once
    ``review_at`` large groups are filed.
    """
    n_parts = d + 1
    prefix_size = d + 2 if pairs else d + 1
    most_prefix_keys = prefix_size * (prefix_size - 1) // 2 if pairs else prefix_size
    whole_key = np.empty(1, dtype=np.uint64)
    whole_found = np.empty(1, dtype=np.int64)
    part_keys = np.empty(n_parts, dtype=np.uint64)
    part_found = np.empty(n_parts, dtype=np.int64)
    prefix_keys = np.empty(most_prefix_keys, dtype=np.uint64)
    prefix_found = np.empty(most_prefix_keys, dtype=np.int64)
    prefix = np.empty(prefix_size, dtype=np.int64)
    prefix_rank = np.empty(prefix_size, dtype=np.int64)
    element_found = np.empty(max(2 * d, 1), dtype=np.int64)
    element_length = np.empty(max(2 * d, 1), dtype=np.int64)
    fingerprint = np.empty(FINGERPRINT_WORDS, dtype=np.uint64)
    n_rows = starts.size - 1
    for v in range(first, n_rows):
        a0, a1 = starts[v], starts[v + 1]
        s = a1 - a0
        if s == 0:
            continue
        large = s > d
        searched = large and d > 0  # else unique if large and not a copy
        g = counters[GROUPS]
        if (
            (
                searched
                and (
                    counters[LARGE] >= review_at
                    if prefixes_on
                    else counters[PART_COST] >= prefixes_after
                )
            )
            or counters[MEMBERS] + s > members.size
            or g + 2 > group_start.size
            or g + 1 > min(fingerprints.shape[0], stamp.size)
            or not _has_room(whole_index, 1)
            or not _has_room(part_index, n_parts)
            or (prefixes_on and not _has_room(prefix_index, most_prefix_keys))
            or not _has_room(element_index, d)
        ):
            return v

        # The group's whole key, part keys and fingerprint; a copy of a filed group stops here.
        whole_key[0] = 0
        for c in range(n_parts):
            part_keys[c] = part_salt[c]
        fingerprint[:] = 0
        for i in range(a0, a1):
            x = rows[i]
            whole_key[0] ^= salt_low[x]
            part_keys[sample_part[x]] ^= sample_salt[x]
            bit = sample_bit[x]
            fingerprint[bit >> 6] |= np.uint64(1) << np.uint64(bit & 63)
        whole_found[0] = _find(whole_index, whole_key[0])
        if whole_found[0] >= 0 and _scan(
            whole_index, whole_found, 1, rows, a0, a1, fingerprint,
            members, group_start, fingerprints, stamp, 0, counters,
        ):  # fmt: skip
            continue

        n_prefix_keys = 0
        if searched:
            # How many groups each index has under the group's keys.
            part_cost, prefix_cost, element_cost, n_elements = 0, 0, 0, 0
            for c in range(n_parts):
                part_found[c] = _find(part_index, part_keys[c])
                part_cost += _length(part_index, part_found[c])
            if prefixes_on:
                n_prefix = _prefix(rows, a0, a1, d, pairs, rank, prefix, prefix_rank)
                n_prefix_keys = _prefix_keys(
                    prefix, n_prefix, pairs, salt_low, salt_high, prefix_keys
                )
                for k in range(n_prefix_keys):
                    prefix_found[k] = _find(prefix_index, prefix_keys[k])
                    prefix_cost += _length(prefix_index, prefix_found[k])
            if s <= 2 * d:  # small groups may be within d: those of d + 1 members cover them
                for i in range(s):
                    element_found[i] = _find(element_index, sample_salt[rows[a0 + i]])
                    element_length[i] = _length(element_index, element_found[i])
                element_cost = _shortest(element_found, element_length, s, d + 1)
                n_elements = d + 1 if element_cost > 0 else 0

            use_prefixes = prefixes_on and prefix_cost < part_cost
            large_cost = prefix_cost if use_prefixes else part_cost
            counters[PART_COST] += part_cost
            counters[READ_COST] += large_cost
            counters[CHECKS] += 1
            if use_prefixes:
                counters[PREFIX_READS] += 1
            elements_first = element_cost < large_cost
            near = elements_first and _scan(
                element_index, element_found, n_elements, rows, a0, a1, fingerprint,
                members, group_start, fingerprints, stamp, d, counters,
            )  # fmt: skip
            if not near and use_prefixes:
                near = _scan(
                    prefix_index, prefix_found, n_prefix_keys, rows, a0, a1, fingerprint,
                    members, group_start, fingerprints, stamp, d, counters,
                )  # fmt: skip
            elif not near:
                near = _scan(
                    part_index, part_found, n_parts, rows, a0, a1, fingerprint,
                    members, group_start, fingerprints, stamp, d, counters,
                )  # fmt: skip
            if not near and not elements_first:
                near = _scan(
                    element_index, element_found, n_elements, rows, a0, a1, fingerprint,
                    members, group_start, fingerprints, stamp, d, counters,
                )  # fmt: skip
            unique[v] = not near
        else:
            unique[v] = large

        # File the group.
        start = counters[MEMBERS]
        members[start : start + s] = rows[a0:a1]
        group_start[g + 1] = start + s
        fingerprints[g] = fingerprint
        stamp[g] = 0
        counters[GROUPS] = g + 1
        counters[MEMBERS] = start + s
        _add(whole_index, whole_found[0], whole_key[0], g, group_start)
        if searched:
            counters[LARGE] += 1
            counters[LARGE_MEMBERS] += s
            for i in range(a0, a1):
                sample_count[rows[i]] += 1
            for c in range(n_parts):
                _add(part_index, part_found[c], part_keys[c], g, group_start)
            for k in range(n_prefix_keys):
                _add(prefix_index, prefix_found[k], prefix_keys[k], g, group_start)
        elif not large:
            for i in range(a0, a1):
                _add(element_index, -1, sample_salt[rows[i]], g, group_start)
    return n_rows


@njit(cache=True, nogil=True)
def _file_prefixes(
    first: int,
    members: np.ndarray,
    group_start: np.ndarray,
    n_groups: int,
    d: int,
    pairs: bool,
    rank: np.ndarray,
    salt_low: np.ndarray,
    salt_high: np.ndarray,
    prefix_index: Any,
) -> int:
    """File the large groups from ``first`` on in the prefix index; return where it stopped.

    Stops at ``n_groups``, or at the first large group for which the index has no room.
    """
    prefix_size = d + 2 if pairs else d + 1
    most_keys = prefix_size * (prefix_size - 1) // 2 if pairs else prefix_size
    keys = np.empty(most_keys, dtype=np.uint64)
    prefix = np.empty(prefix_size, dtype=np.int64)
    prefix_rank = np.empty(prefix_size, dtype=np.int64)
    for g in range(first, n_groups):
        b0, b1 = group_start[g], group_start[g + 1]
        if b1 - b0 <= d:
            continue
        if not _has_room(prefix_index, most_keys):
            return g
        n = _prefix(members, b0, b1, d, pairs, rank, prefix, prefix_rank)
        for k in range(_prefix_keys(prefix, n, pairs, salt_low, salt_high, keys)):
            _add(prefix_index, -1, keys[k], g, group_start)
    return n_groups


def _grown(array: npt.NDArray[Scalar], needed: int) -> npt.NDArray[Scalar]:
    """``array`` if it has ``needed`` rows, else a copy with half as many rows again, or more."""
    if len(array) >= needed:
        return array
    grown = np.empty((max(needed, len(array) * 3 // 2), *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


class _KeyIndex:
    """Keys to lists of filed groups, in the arrays the compiled loops take (see above)."""

    def __init__(self) -> None:
        self.table = np.zeros(64, dtype=np.uint64)
        self.segments = np.empty((16, 5), dtype=np.int32)
        self.slots = np.empty(64, dtype=np.uint64)
        self.used = np.zeros(3, dtype=np.int64)

    def arrays(self) -> tuple[npt.NDArray[Any], ...]:
        return (self.table, self.segments, self.slots, self.used)

    def make_room(self, n_keys: int) -> None:
        """Grow the arrays to take ``n_keys`` more keys, whatever they are."""
        if int(self.used[SLOTS]) + n_keys * SEGMENT >= LIMIT:
            raise InputError(
                f"a job's missing-call groups need more than {LIMIT:,} index entries "
                "at this node; split it into smaller jobs"
            )
        self.segments = _grown(self.segments, int(self.used[SEGMENTS]) + n_keys)
        self.slots = _grown(self.slots, int(self.used[SLOTS]) + n_keys * SEGMENT)
        size = len(self.table)
        while int(self.used[KEYS]) + n_keys > MAX_LOAD * size:
            size *= 2
        if size > len(self.table):
            table = np.zeros(size, dtype=np.uint64)
            _rehash(self.table, table)
            self.table = table

    def clear(self) -> None:
        self.table[:] = 0
        self.used[:] = 0

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays())


class MissingGroups:
    """The missing-call groups a node has filed in one job, and the check for new ones.

    Parameters
    ----------
    n_samples
        Samples in the job's cohort at this node: the columns of every block.
    min_count
        The node's ``min_count``: a variant is unique if its group has at
        least ``min_count`` samples and differs by more than ``min_count -
        1`` samples from every group filed before it. With 1, every
        non-empty group unlike all earlier ones is unique.
    seed
        Seed of the random maps behind the indexes; it changes the running
        time only, never a result.

    Raises
    ------
    InputError
        If ``n_samples`` is negative or ``min_count`` is below 1.
    """

    def __init__(self, n_samples: int, *, min_count: int, seed: int = 0) -> None:
        if n_samples < 0:
            raise InputError(f"a cohort cannot have {n_samples} samples")
        if min_count < 1:
            raise InputError(f"min_count must be at least 1, not {min_count}")
        self._n_samples = n = int(n_samples)
        self._min_count = int(min_count)
        d = self._min_count - 1
        self._pairs = 1 <= d <= MAX_PAIR_D
        rng = np.random.default_rng(seed)

        def salts(size: int) -> npt.NDArray[np.uint64]:
            return np.frombuffer(rng.bytes(8 * size), dtype=np.uint64).copy()

        self._sample_part = (rng.permutation(n) % (d + 1)).astype(np.int64)
        self._sample_salt = salts(n)
        self._sample_bit = rng.integers(0, 64 * FINGERPRINT_WORDS, n)
        self._part_salt = salts(d + 1)
        self._tie_break = rng.permutation(n)
        self._rank = self._tie_break.copy()
        self._salt_low = salts(n)
        self._salt_high = salts(n)
        self._prefixes_on = False
        self._review_at = 0
        self._prefix_builds = 0

        # Filed groups: sorted members, 2 bytes each while sample indexes fit.
        member_type = np.uint16 if n <= 1 << 16 else np.int32
        self._members: npt.NDArray[np.integer[Any]] = np.empty(1024, dtype=member_type)
        self._group_start = np.zeros(64, dtype=np.int64)
        self._fingerprints = np.empty((64, FINGERPRINT_WORDS), dtype=np.uint64)
        self._stamp = np.zeros(64, dtype=np.int64)
        self._sample_count = np.zeros(n, dtype=np.int64)  # in large filed groups
        self._counters = np.zeros(10, dtype=np.int64)
        self._whole = _KeyIndex()
        self._parts = _KeyIndex()
        self._prefixes = _KeyIndex()
        self._elements = _KeyIndex()

    @property
    def n_samples(self) -> int:
        """Samples in the job's cohort at this node."""
        return self._n_samples

    @property
    def min_count(self) -> int:
        """The smallest unique group, and one more than the largest distance that is not unique."""
        return self._min_count

    @property
    def filed(self) -> int:
        """How many distinct non-empty groups are filed (identical groups count once)."""
        return int(self._counters[GROUPS])

    @property
    def filed_members(self) -> int:
        """The total size of the filed groups."""
        return int(self._counters[MEMBERS])

    @property
    def prefix_reads(self) -> int:
        """How many checks read the prefix index rather than the part index."""
        return int(self._counters[PREFIX_READS])

    @property
    def candidates(self) -> int:
        """How many index entries the checks have read (the work beyond reading the groups)."""
        return int(self._counters[CANDIDATES])

    @property
    def prefix_builds(self) -> int:
        """How many times the prefix index was built, with the samples ranked anew."""
        return self._prefix_builds

    @property
    def nbytes(self) -> int:
        """Bytes held by the filed groups and the indexes."""
        arrays = [value for value in vars(self).values() if isinstance(value, np.ndarray)]
        indexes = (self._whole, self._parts, self._prefixes, self._elements)
        return sum(a.nbytes for a in arrays) + sum(index.nbytes for index in indexes)

    def check(self, missing: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """Report which variants of a block are unique, and file their missing-call groups.

        Parameters
        ----------
        missing
            ``(variants, samples)`` boolean: the missing calls of a block of
            variants, in the job's order, for the job's cohort at this node.

        Returns
        -------
        numpy.ndarray
            ``(variants,)`` boolean ``unique``, True where the variant's group
            has at least ``min_count`` samples and differs by more than
            ``min_count - 1`` samples from every group filed before it (in
            earlier blocks, or earlier in this block); an identical group is
            not unique. Every non-empty group is then filed.

        Raises
        ------
        InputError
            If ``missing`` is not a 2-D boolean array with one column per sample.
        """
        missing = np.asarray(missing)
        if missing.dtype != np.bool_ or missing.ndim != 2:
            raise InputError(
                f"missing calls must be a 2-D boolean (variants, samples) array, "
                f"not {missing.ndim}-D {missing.dtype}; no group was checked"
            )
        if missing.shape[1] != self._n_samples:
            raise InputError(
                f"missing calls have {missing.shape[1]} samples but the cohort has "
                f"{self._n_samples}; no group was checked"
            )
        n_variants = missing.shape[0]
        unique = np.zeros(n_variants, dtype=np.bool_)
        if n_variants == 0 or self._n_samples == 0:
            return unique
        flat = np.ascontiguousarray(missing).view(np.uint8).reshape(-1)
        if flat.ctypes.data % 8:  # read as 64-bit words
            flat = flat.copy()
        rows, starts = _block_members(flat, n_variants, self._n_samples)
        done = 0
        while done < n_variants:
            done = _check_rows(
                done,
                rows,
                starts,
                unique,
                self._min_count - 1,
                self._pairs,
                self._prefixes_on,
                self._prefixes_after(),
                self._review_at,
                self._sample_part,
                self._sample_salt,
                self._sample_bit,
                self._part_salt,
                self._rank,
                self._salt_low,
                self._salt_high,
                self._members,
                self._group_start,
                self._fingerprints,
                self._stamp,
                self._sample_count,
                self._counters,
                self._whole.arrays(),
                self._parts.arrays(),
                self._prefixes.arrays(),
                self._elements.arrays(),
            )
            if done < n_variants:
                self._decide()
                self._make_room(int(starts[done + 1] - starts[done]))
        return unique

    def _prefix_keys(self) -> int:
        """Count the most keys a group can have in the prefix index."""
        d = self._min_count - 1
        return (d + 2) * (d + 1) // 2 if self._pairs else d + 1

    @property
    def _large(self) -> int:
        """How many large groups (of at least ``min_count`` samples) are filed."""
        return int(self._counters[LARGE])

    def _make_room(self, size: int) -> None:
        """Grow the arrays, by half at least, to file one more group of ``size`` members."""
        groups = self.filed
        if groups >= LIMIT:
            raise InputError(
                f"a job has more than {LIMIT:,} distinct missing-call groups at this node; "
                "split it into smaller jobs"
            )
        self._members = _grown(self._members, self.filed_members + size)
        self._group_start = _grown(self._group_start, groups + 2)
        self._fingerprints = _grown(self._fingerprints, groups + 1)
        self._stamp = _grown(self._stamp, groups + 1)
        self._whole.make_room(1)
        self._parts.make_room(self._min_count)
        if self._prefixes_on:
            self._prefixes.make_room(self._prefix_keys())
        self._elements.make_room(self._min_count - 1)

    def _prefixes_after(self) -> int:
        """Count the part-index entries after which the prefix index is built."""
        return PREFIXES_AFTER * (self._large + 64)

    def _decide(self) -> None:
        """Build, review or drop the prefix index, as the counts since the last decision say."""
        part_cost, read_cost, checks = (int(c) for c in self._counters[PART_COST:])
        if not self._prefixes_on:
            if part_cost < self._prefixes_after():
                return
            self._prefixes_on = True
            self._file_prefixes(self._ranked())
        elif self._large < self._review_at:
            return
        elif part_cost - read_cost < PREFIX_SAVING * checks:
            self._prefixes_on = False
            self._prefixes = _KeyIndex()
        else:
            rank = self._ranked()
            if not np.array_equal(rank, self._rank):
                self._file_prefixes(rank)
        self._counters[PART_COST:] = 0
        self._review_at = 2 * max(self._large, 256)

    def _ranked(self) -> npt.NDArray[np.int64]:
        """Rank the samples: the frequent ones last, by frequency; the others in a fixed order.

        A sample is frequent if it is in more than ``FREQUENT`` times as many
        large filed groups as the average sample. With missing calls at
        random there are none, and the ranks never change.
        """
        counts = self._sample_count
        average = int(self._counters[LARGE_MEMBERS]) / max(self._n_samples, 1)
        frequent = counts > FREQUENT * average
        order = np.lexsort((self._tie_break, np.where(frequent, counts, 0)))
        rank = np.empty(self._n_samples, dtype=np.int64)
        rank[order] = np.arange(self._n_samples)
        return rank

    def _file_prefixes(self, rank: npt.NDArray[np.int64]) -> None:
        """Rebuild the prefix index of the large filed groups, the samples ranked by ``rank``."""
        self._rank = rank
        self._prefixes.clear()
        done, groups = 0, self.filed
        while done < groups:
            self._prefixes.make_room(self._prefix_keys())
            done = _file_prefixes(
                done,
                self._members,
                self._group_start,
                groups,
                self._min_count - 1,
                self._pairs,
                self._rank,
                self._salt_low,
                self._salt_high,
                self._prefixes.arrays(),
            )
        self._prefix_builds += 1
