#!/usr/bin/env python3
"""Generates hf_unicode_compat_table.inc: where Hugging Face tokenizers' view of
Unicode differs from utf8proc's.

Why this exists: the BERT normalizer and pre-tokenizer of Hugging Face
`tokenizers` classify characters with the Rust crate `unicode_categories`
0.1.1, whose tables are frozen at an old Unicode version (about 9.0), and
normalize with `unicode-normalization-alignments`, also old. utf8proc follows
the current Unicode (15.0 in Debian's 2.8.0). For characters assigned or
recategorized since then (new punctuation, new nonspacing marks, new format
controls, combining classes of new marks) the two disagree, and exact parity
needs HF's answer. This script
asks HF itself, character by character, and writes the differences as ranges.
Nothing here is hand-made: rerun it when utf8proc or tokenizers changes.

Run from the repo root with the project venv (tokenizers==0.19.1):
  .venv/bin/python nodes/tokenize/gen_hf_unicode_compat.py

It also checks the assumptions the C++ code makes and fails loudly if one no
longer holds: whitespace is Rust's White_Space, lowercase differs from
utf8proc's simple lowercase only for U+0130, canonical decomposition differs
only by "HF does not decompose this code point", and combining classes differ
only for code points utf8proc does not count as starters.
"""

import ctypes
import ctypes.util
import os
import sys

import tokenizers
from tokenizers.normalizers import NFD, BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hf_unicode_compat_table.inc")

# utf8proc_category_t, in the order of utf8proc.h.
CATEGORIES = ["Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc",
              "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp",
              "Cc", "Cf", "Cs", "Co"]
UTF8PROC_DECOMPOSE = 1 << 4

# Must match enum class HfCharClass in hf_unicode.h.
NONE, OTHER, PUNCTUATION, NONSPACING_MARK = "kNone", "kOther", "kPunctuation", "kNonspacingMark"


class Utf8procProperty(ctypes.Structure):
    # The first two fields of utf8proc_property_t.
    _fields_ = [("category", ctypes.c_int16), ("combining_class", ctypes.c_int16)]


def load_utf8proc():
    lib = ctypes.CDLL(ctypes.util.find_library("utf8proc") or "libutf8proc.so.2")
    lib.utf8proc_get_property.restype = ctypes.POINTER(Utf8procProperty)
    lib.utf8proc_category.restype = ctypes.c_int
    lib.utf8proc_tolower.restype = ctypes.c_int32
    lib.utf8proc_unicode_version.restype = ctypes.c_char_p
    lib.utf8proc_version.restype = ctypes.c_char_p
    lib.utf8proc_decompose_char.restype = ctypes.c_ssize_t
    lib.utf8proc_decompose_char.argtypes = [ctypes.c_int32, ctypes.POINTER(ctypes.c_int32),
                                            ctypes.c_ssize_t, ctypes.c_int,
                                            ctypes.POINTER(ctypes.c_int)]
    return lib


def is_ascii_punct(cp):
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126


def hf_combining_classes(u, nfd):
    """The canonical combining class HF's NFD uses, where it differs from
    utf8proc's: {code point: class}. HF's class is read off how its NFD
    reorders the code point against reference marks of known class."""
    def ccc(cp):
        return u.utf8proc_get_property(cp).contents.combining_class

    def moves_before(a, b):  # does HF put b before a in "x" a b?
        return nfd.normalize_str("x" + chr(a) + chr(b)) == "x" + chr(b) + chr(a)

    # One reference mark per class, among marks HF itself orders as utf8proc
    # says (old marks; classes only newer marks use are left out).
    candidates = {}
    for cp in range(0x300, 0x20000):
        c = ccc(cp)
        if c and nfd.normalize_str(chr(cp)) == chr(cp):
            candidates.setdefault(c, []).append(cp)
    refs = {}
    for c in sorted(candidates):
        for cp in candidates[c]:
            # cp must sort after every reference of a lower class.
            if all(moves_before(cp, r) and not moves_before(r, cp) for r in refs.values()):
                refs[c] = cp
                break

    low, high = refs[min(refs)], refs[max(refs)]
    out = {}
    for cp in range(1, 0x110000):
        if 0xD800 <= cp <= 0xDFFF or nfd.normalize_str(chr(cp)) != chr(cp):
            continue  # code points that decompose never reach the reordering
        mine = ccc(cp)
        if mine == 0 and not moves_before(high, cp) and not moves_before(cp, low):
            continue  # a starter for both
        # (A reference cannot be compared with itself: "x" r r reads the same
        # either way.)
        below = [rc for rc, r in refs.items() if r != cp and moves_before(r, cp)]  # cp < rc
        above = [rc for rc, r in refs.items() if r != cp and moves_before(cp, r)]  # rc < cp
        if not below and not above:
            hf = 0
        else:
            lo = max(above, default=0)
            hi = min(below, default=256)
            equal = [rc for rc in refs if lo < rc < hi]
            if cp in refs.values():
                hf = mine
            elif len(equal) == 1:
                hf = equal[0]
            elif not equal and mine and lo < mine < hi:
                hf = mine
            else:
                raise SystemExit("cannot place U+%04X between classes %d and %d" % (cp, lo, hi))
        if hf != mine:
            out[cp] = hf
    return out


def main():
    u = load_utf8proc()
    buf = (ctypes.c_int32 * 16)()
    boundclass = ctypes.c_int(0)

    def u_decompose(cp):
        boundclass.value = 0
        n = u.utf8proc_decompose_char(cp, buf, 16, UTF8PROC_DECOMPOSE, ctypes.byref(boundclass))
        return "".join(chr(buf[i]) for i in range(n))

    def u_class(cp):
        cat = CATEGORIES[u.utf8proc_category(cp)]
        if cat in ("Cc", "Cf", "Co", "Cs"):
            return OTHER
        if cat[0] == "P":
            return PUNCTUATION
        if cat == "Mn":
            return NONSPACING_MARK
        return NONE

    def u_whitespace(cp):
        return (cp in (9, 10, 11, 12, 13, 0x85) or
                CATEGORIES[u.utf8proc_category(cp)] in ("Zs", "Zl", "Zp"))

    clean = BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False,
                           lowercase=False)
    strip = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True,
                           lowercase=False)
    lower = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=False,
                           lowercase=True)
    nfd = NFD()
    pre = BertPreTokenizer()

    diffs = []           # (cp, hf_class)
    no_decomposition = []
    problems = []
    for cp in range(1, 0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        # HF's class, from what its normalizer and pre-tokenizer do with c.
        cleaned = clean.normalize_str("a" + c + "b")
        pieces = pre.pre_tokenize_str("a" + c + "b")
        hf_ws = len(pieces) == 2
        mine = u_class(cp)
        if cp in (9, 10, 13):
            # Controls that BERT's clean_text counts as whitespace by an explicit
            # rule; their class is utf8proc's.
            hf = mine
        elif cp != 0xFFFD and cleaned == "ab":
            hf = OTHER
        elif len(pieces) == 3:
            # ASCII punctuation splits by an explicit rule whatever its category
            # ("$" is Sc); only the category-based part is compared.
            hf = NONE if is_ascii_punct(cp) and mine == NONE else PUNCTUATION
        elif nfd.normalize_str(c) == c and strip.normalize_str(c) == "":
            hf = NONSPACING_MARK
        else:
            hf = NONE
        if hf_ws != u_whitespace(cp):
            problems.append("whitespace differs at U+%04X" % cp)
        # A code point that decomposes never reaches the Mn test after NFD;
        # only its parts do, so its own Mn-ness does not matter.
        decomposes = u_decompose(cp) != c
        if hf != mine and not (decomposes and NONSPACING_MARK in (hf, mine)):
            diffs.append((cp, hf))

        hf_nfd = nfd.normalize_str(c)
        if hf_nfd != u_decompose(cp):
            if hf_nfd == c:
                no_decomposition.append(cp)
            else:
                problems.append("NFD differs at U+%04X" % cp)
        hf_lower = lower.normalize_str(c)
        if hf_lower != chr(u.utf8proc_tolower(cp)) and cp != 0x130:
            problems.append("lowercase differs at U+%04X" % cp)
    if lower.normalize_str("\u0130") != "i\u0307":
        problems.append("U+0130 no longer lowercases to i + U+0307")
    if problems:
        sys.exit("assumptions of hf_unicode.cc no longer hold:\n  " + "\n  ".join(problems))

    ccc_overrides = hf_combining_classes(u, nfd)
    for cp, c in ccc_overrides.items():
        if u.utf8proc_get_property(cp).contents.combining_class == 0:
            # hf_unicode.cc consults the table only for utf8proc's non-starters.
            problems.append("U+%04X is a starter for utf8proc but class %d for HF" % (cp, c))
    if problems:
        sys.exit("assumptions of hf_unicode.cc no longer hold:\n  " + "\n  ".join(problems))

    ranges = []
    for cp, cls in diffs:
        if ranges and ranges[-1][1] == cp - 1 and ranges[-1][2] == cls:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp, cls])

    with open(OUT, "w") as f:
        f.write("// Generated by nodes/tokenize/gen_hf_unicode_compat.py; do not edit.\n")
        f.write("// tokenizers %s, utf8proc %s. Included by hf_unicode.cc.\n" % (
            tokenizers.__version__, u.utf8proc_version().decode()))
        f.write("\n// The Unicode version of the utf8proc these differences were computed against.\n")
        f.write("constexpr char kCompatUnicodeVersion[] = \"%s\";\n" %
                u.utf8proc_unicode_version().decode())
        f.write("\n// Code points whose class Hugging Face tokenizers sees differently from\n")
        f.write("// utf8proc: {first, last, the class HF sees}, sorted, not overlapping.\n")
        f.write("constexpr CompatRange kCompatRanges[] = {\n")
        for first, last, cls in ranges:
            f.write("    {0x%04X, 0x%04X, HfCharClass::%s},\n" % (first, last, cls))
        f.write("};\n")
        f.write("\n// Canonical combining classes HF's NFD uses where they differ from utf8proc's\n")
        f.write("// (mostly marks newer than HF's tables, which it treats as starters).\n")
        f.write("constexpr CompatCombiningClass kCompatCombiningClasses[] = {\n")
        for cp in sorted(ccc_overrides):
            f.write("    {0x%04X, %d},\n" % (cp, ccc_overrides[cp]))
        f.write("};\n")
        f.write("\n// Code points utf8proc decomposes canonically and HF's NFD leaves alone.\n")
        f.write("constexpr char32_t kNoDecomposition[] = {\n")
        for cp in no_decomposition:
            f.write("    0x%04X,\n" % cp)
        f.write("};\n")
    print("%d code points in %d ranges, %d combining classes, %d without decomposition -> %s" % (
        len(diffs), len(ranges), len(ccc_overrides), len(no_decomposition), OUT))


if __name__ == "__main__":
    main()
