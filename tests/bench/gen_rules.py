#!/usr/bin/env python3
"""Generates rule files and messages for the rules benchmarks.

    tests/bench/gen_rules.py [--count 1000] [--seed 1] [--out FILE]
    tests/bench/gen_rules.py --messages DIR [--number 50] [--size 10240] [--seed 1]

The rules imitate a real spam rule set: mostly literal phrases and
alternations over body, rawbody and the Subject, some anchored header
patterns, URI domain rules, a few case-insensitive and multi-line ones, and
meta rules combining earlier ones, all with small scores so the thresholds
rarely fire.  Names are unique (GEN_0001...), every pattern compiles, and
the same seed gives the same file, so runs compare.  `smtpgate-rules lint`
passes on the output.

With --messages, writes NUMBER messages of about SIZE octets each (plain
text, some HTML, some base64; ordinary words with 3% of the rules' words
mixed in) into DIR, for `smtpgate-rules bench`.
"""

from __future__ import annotations

import argparse
import base64
import random
import sys
from pathlib import Path

WORDS = ("account password verify urgent winner prize lottery claim offer free money "
         "invoice payment bank transfer crypto bitcoin investment profit guaranteed "
         "pharmacy pills discount cheap limited time act now click unsubscribe viagra "
         "casino bonus loan credit debt mortgage refinance rolex replica diploma "
         "meeting report schedule project budget review agenda minutes quarter team "
         "delivery parcel tracking shipment customs fee suspended locked security alert").split()
TLDS = ("com", "net", "org", "info", "biz", "ru", "cn", "top", "xyz", "click")
# Messages are ordinary prose with a few of the rules' words mixed in
# (SPAM_SHARE of the words), as real mail is: a message made only of the
# rules' vocabulary would make every rule hit everywhere.
PROSE = ("the of and to in is that it was for on are with as his they be at one have this "
         "from or had by word but what some we can out other were all there when up use your "
         "how said an each she which do their time if will way about many then them write "
         "would like so these her long make thing see him two has look more day could go come "
         "did number sound no most people my over know water than call first who may down "
         "side been now find any new work part take get place made live where after back "
         "little only round man year came show every good me give our under name very through "
         "just form sentence great think say help low line differ turn cause much mean before "
         "move right boy old too same tell does set three want air well also play small end "
         "put home read hand port large spell add even land here must big high such follow").split()
SPAM_SHARE = 0.03


SYLLABLES = ("ka", "lo", "mi", "ne", "pu", "ra", "si", "to", "va", "ze", "bro", "cha", "dri",
             "fle", "gro", "kri", "plo", "shu", "tra", "vex", "zor", "qua", "nix", "lum")


def vocabulary(seed: int, n: int = 2000) -> tuple[str, ...]:
    """Spam-ish words: the fixed list plus made-up ones, so that a thousand
    rules name a thousand different literals, as a real rule set does."""
    rng = random.Random(seed * 7919 + 1)
    words = set(WORDS)
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return tuple(sorted(words))


def phrase(rng: random.Random, n: int) -> str:
    return r"\s+".join(rng.choice(WORDS) for _ in range(n))


def rule_lines(count: int, seed: int) -> list[str]:
    global WORDS
    WORDS = vocabulary(seed)
    rng = random.Random(seed)
    out = [f"# {count} generated rules (seed {seed}): tests/bench/gen_rules.py", ""]
    names: list[str] = []
    for i in range(1, count + 1):
        name = f"GEN_{i:04d}"
        score = f"{rng.choice((0.1, 0.2, 0.3, 0.5, 0.7, 1.0)):.1f}"
        kind = rng.random()
        if kind < 0.45:
            target, pat = "body", phrase(rng, rng.randint(2, 3))
            flags = "i" if rng.random() < 0.5 else ""
        elif kind < 0.55:
            alts = "|".join(sorted({rng.choice(WORDS) for _ in range(4)}))
            target, pat, flags = "rawbody", rf"\b({alts})\s+{rng.choice(WORDS)}\b", "i"
        elif kind < 0.70:
            target = "header Subject"
            pat, flags = rf"\b{rng.choice(WORDS)}\b.*\b{rng.choice(WORDS)}\b", "i"
        elif kind < 0.78:
            target = rng.choice(("header From", "header Reply-To", "header X-Mailer"))
            pat, flags = rf"{rng.choice(WORDS)}[0-9]{{2,}}@", "i"
        elif kind < 0.88:
            dom = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}"
            target, pat, flags = "uri", rf"^https?://([^/]*\.)?{dom}\.{rng.choice(TLDS)}(/|$)", "i"
        elif kind < 0.93:
            target, pat, flags = "body", rf"^{rng.choice(WORDS)}\s*:\s*\d+", "im"
        elif names and kind < 0.98:
            a, b, c = rng.sample(names, 3) if len(names) >= 3 else (names[0],) * 3
            op = rng.choice(("&&", "||"))
            out.append(f"rule {name} meta ({a} {op} {b}) && !{c} score {score}")
            names.append(name)
            continue
        else:
            target, pat, flags = "full", rf"X-{rng.choice(WORDS).capitalize()}-Id:\s*\d+", ""
        # m{...}: URI patterns hold slashes
        out.append(f"rule {name} {target} m{{{pat}}}{flags} score {score}")
        names.append(name)
    out.append("")
    return out


def write_messages(directory: Path, number: int, size: int, seed: int) -> None:
    global WORDS
    WORDS = vocabulary(seed)
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(number):
        words = []
        total = 0
        while total < size:
            line = " ".join(rng.choice(WORDS) if rng.random() < SPAM_SHARE else rng.choice(PROSE)
                            for _ in range(12))
            if rng.random() < 0.05:
                line += f" https://{rng.choice(WORDS)}-{rng.choice(WORDS)}.{rng.choice(TLDS)}/x"
            words.append(line)
            total += len(line) + 2
        text = "\r\n".join(words) + "\r\n"
        head = (f"From: {rng.choice(WORDS)}{rng.randint(1, 99)}@example.org\r\n"
                f"To: user@example.net\r\n"
                f"Subject: {' '.join(rng.choice(WORDS) for _ in range(5))}\r\n"
                f"Date: Tue, 1 Dec 2026 08:00:00 +0000\r\n"
                f"Message-ID: <{seed}.{i}@gen.example.org>\r\nMIME-Version: 1.0\r\n")
        kind = i % 3
        if kind == 0:
            msg = head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
        elif kind == 1:
            html = "<html><body><p>" + text.replace("\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n"
            msg = head + "Content-Type: text/html; charset=utf-8\r\n\r\n" + html
        else:
            b64 = base64.encodebytes(text.encode()).decode().replace("\n", "\r\n")
            msg = (head + "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "--b--\r\n")
        (directory / f"msg-{i:04d}.eml").write_bytes(msg.encode())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1000, help="rules to generate (1..100000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, help="rule file to write (default: standard output)")
    ap.add_argument("--messages", type=Path, help="write messages into this folder instead")
    ap.add_argument("--number", type=int, default=50, help="messages to write (1..10000)")
    ap.add_argument("--size", type=int, default=10240, help="approximate octets per message")
    args = ap.parse_args()
    if args.messages is not None:
        if not 1 <= args.number <= 10000 or not 100 <= args.size <= 64 * 1024 * 1024:
            ap.error("--number 1..10000, --size 100..64M")
        write_messages(args.messages, args.number, args.size, args.seed)
        return 0
    if not 1 <= args.count <= 100000:
        ap.error("--count 1..100000")
    text = "\n".join(rule_lines(args.count, args.seed))
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
