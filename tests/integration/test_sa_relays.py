"""SpamAssassin's Received-chain model (rules/sa_received.c, sa_relays.c, sa_eval_relay.c)
against Debian's `spamassassin -L -t`, on messages written for this test.

smtpgate is the receiving MTA: SpamAssassin gets each message WITH the Received field a
Postfix receiving MTA adds for the session's facts (client address, verified name, HELO,
TLS, SASL login), smtpgate-rules gets it WITHOUT that field and the same facts as options.
Both must judge the same relay chain (SpamAssassin's X-Spam-Relays-* lines, from its
"metadata" debug channel, against --dump-relays; the queue id Postfix writes, which smtpgate
has not, is the only difference allowed) and give the same hit or miss for every relay rule
smtpgate loads (header rules over X-Spam-Relays-*, RelayEval's tests).  trusted_networks and
its kin come from a local .cf file given to both (--cf / --sa-local).

The rules are read where the package puts them and never copied here.
"""

from __future__ import annotations

import re

import pytest

from gate import plugin_dir, plugin_section
from helpers import assert_reply
from sa_diff import disagreements, gate_run, lint_list, needs_spamassassin, sa_run
from sa_diff import msg as _msg

pytestmark = needs_spamassassin

QID = "4QZrelay1"
FROM = "From: Alice Example <alice@example.org>\n"
BASE = ("To: Bob <bob@example.net>\n"
        "Subject: Minutes of the meeting\nDate: Mon, 07 Dec 2026 09:59:00 +0000\n"
        "Message-ID: <20261207095900.4711@mail.example.org>\n")
BY = "mx.example.net"


def postfix_rcvd(ip: str, rdns: str | None, helo: str, tls: bool = False,
                 auth: str | None = None) -> str:
    """The field Postfix's smtpd prepends for these facts."""
    addr = f"IPv6:{ip}" if ":" in ip else ip
    proto = "ESMTP" + ("S" if tls else "") + ("A" if auth else "")
    return (f"Received: from {helo} ({rdns or 'unknown'} [{addr}])\n"
            f"\tby {BY} (Postfix) with {proto} id {QID}\n"
            f"\tfor <bob@example.net>; Mon,  7 Dec 2026 10:00:01 +0000 (UTC)\n")


POSTFIX_PRIOR = ("Received: from out.example.org (out.example.org [81.2.69.160])\n"
                 "\tby relay.example.org (Postfix) with ESMTP id 4ABC123\n"
                 "\tfor <bob@example.net>; Mon,  7 Dec 2026 09:59:30 +0000 (UTC)\n")
EXIM_PRIOR = ("Received: from host.example.org ([81.2.69.161] helo=ehlo.example.org)\n"
              "\tby relay.example.org with esmtp (Exim 4.96)\n"
              "\tid 1tK0aa-000abc-1X for bob@example.net; Mon, 07 Dec 2026 09:59:30 +0000\n")
SENDMAIL_PRIOR = ("Received: from helo.example.org (host.example.org [81.2.69.162])\n"
                  "\tby relay.example.org (8.17.1/8.17.1) with ESMTP id 0B79xU1a012345\n"
                  "\tfor <bob@example.net>; Mon, 7 Dec 2026 09:59:30 GMT\n")
QMAIL_PRIOR = ("Received: from unknown (HELO desk.example.org) (81.2.69.163)\n"
               "  by relay.example.org with SMTP; 7 Dec 2026 09:59:30 -0000\n")
# each relay names a by= that is not the rDNS of the one before it: a forged trail
FORGED = ("Received: from a.example.com (a.example.com [81.2.69.170])\n"
          "\tby b.example.info (Postfix) with ESMTP id 1A; Mon, 7 Dec 2026 09:59:10 +0000\n"
          "Received: from c.example.biz (c.example.biz [81.2.69.171])\n"
          "\tby d.example.co (Postfix) with ESMTP id 1B; Mon, 7 Dec 2026 09:59:00 +0000\n"
          "Received: from e.example.edu (e.example.edu [81.2.69.172])\n"
          "\tby f.example.mobi (Postfix) with ESMTP id 1C; Mon, 7 Dec 2026 09:58:50 +0000\n")
PRIVATE_PRIOR = ("Received: from desk.lan (desk.lan [192.168.1.20])\n"
                 "\tby gw.lan (Postfix) with ESMTP id 2A; Mon, 7 Dec 2026 09:59:20 +0000\n")
FETCHMAIL = ("Received: from pop.example.org [81.2.69.180]\n"
             "\tby localhost with POP3 (fetchmail-6.4.37)\n"
             "\tfor <bob@localhost> (single-drop); Mon, 07 Dec 2026 09:59:40 +0000 (UTC)\n")

# rules over ALL-TRUSTED and its kin, given to both on every message
CF_ALL = ("header T_ALL_T ALL-TRUSTED =~ /^Subject: Minutes/m\n"
          "header T_ALL_U ALL-UNTRUSTED =~ /^Received: from out\\.example\\.org /m\n"
          "header T_ALL_I ALL-INTERNAL =~ /^To: Bob/m\n"
          "header T_ALL_E ALL-EXTERNAL =~ /(?:^|\\n)Received:\\s.+\\nReceived:\\s/s\n")
ALL_RULES = {"T_ALL_T", "T_ALL_U", "T_ALL_I", "T_ALL_E"}
CF_TRUSTED = "trusted_networks 81.2.69.0/24\n"
CF_SPLIT = "trusted_networks 81.2.69.0/24\ninternal_networks 81.2.69.140/30\n"
CF_MSA = "trusted_networks 81.2.69.142\nmsa_networks 81.2.69.142\n"
CF_EXCLUDE = "trusted_networks !81.2.69.142 81.2.69.0/24\n"

# name -> (facts, the message's own fields, local .cf or None)
F = dict
CASES = {
    "direct": (F(ip="81.2.69.142", rdns="mail.example.org", helo="mail.example.org"), "", None),
    "no_rdns": (F(ip="81.2.69.143", helo="host.example.org"), "", None),
    "dotcom_helo": (F(ip="81.2.69.144", helo="hotmail.com"), "", None),
    "dotcom_helo_rdns": (F(ip="81.2.69.144", rdns="x.example.org", helo="yahoo.com"), "", None),
    "numeric_helo": (F(ip="81.2.69.145", helo="91.198.174.192"), "", None),
    "numeric_helo_same": (F(ip="81.2.69.145", helo="81.2.69.145"), "", None),
    "postfix_chain": (F(ip="81.2.69.150", rdns="relay.example.org", helo="relay.example.org"),
                      POSTFIX_PRIOR, None),
    "exim_chain": (F(ip="81.2.69.150", rdns="relay.example.org", helo="relay.example.org"),
                   EXIM_PRIOR, None),
    "sendmail_chain": (F(ip="81.2.69.150", rdns="relay.example.org", helo="relay.example.org"),
                       SENDMAIL_PRIOR, None),
    "qmail_chain": (F(ip="81.2.69.150", helo="relay.example.org"), QMAIL_PRIOR, None),
    "forged_trail": (F(ip="81.2.69.169", rdns="g.example.net", helo="g.example.net"),
                     FORGED, None),
    "auth_tls": (F(ip="81.2.69.146", rdns="dsl.example.org", helo="laptop", tls=True,
                   auth="alice"), "", None),
    "private_client": (F(ip="192.168.1.30", helo="desk2.lan"), POSTFIX_PRIOR, None),
    "private_chain": (F(ip="81.2.69.151", rdns="gw.example.org", helo="gw.example.org"),
                      PRIVATE_PRIOR, None),
    "trusted_net": (F(ip="81.2.69.142", rdns="mail.example.org", helo="mail.example.org"),
                    POSTFIX_PRIOR, CF_TRUSTED),
    "trusted_all": (F(ip="81.2.69.142", rdns="mail.example.org", helo="mail.example.org"),
                    "", CF_TRUSTED),
    "internal_split": (F(ip="81.2.69.142", rdns="mail.example.org", helo="mail.example.org"),
                       POSTFIX_PRIOR, CF_SPLIT),
    "msa": (F(ip="81.2.69.142", rdns="mail.example.org", helo="mail.example.org"),
            POSTFIX_PRIOR, CF_MSA),
    "excluded": (F(ip="81.2.69.142", rdns="mail.example.org", helo="mail.example.org"),
                 POSTFIX_PRIOR, CF_EXCLUDE),
    "unparseable": (F(ip="81.2.69.152", rdns="relay.example.org", helo="relay.example.org"),
                    "Received: from something weird\n", None),
    "fetchmail": (F(ip="127.0.0.1", helo="localhost"), FETCHMAIL + POSTFIX_PRIOR, None),
    "ipv6": (F(ip="2a00:1450:4001:80b::2005", rdns="mail-v6.example.org",
               helo="mail-v6.example.org"), "", None),
    "originating_ip": (F(ip="81.2.69.153", rdns="webmail.example.org",
                         helo="webmail.example.org"), "X-Originating-IP: [81.2.69.200]\n", None),
    "saved": (None, POSTFIX_PRIOR + SENDMAIL_PRIOR, None),
    # HeaderEval's forged trails of mail services: the receiving MTA's field counts there
    "hotmail_from": (F(ip="81.2.69.154", rdns="x.example.org", helo="x.example.org"),
                     "From: Al <al@hotmail.com>\n", None),
    "hotmail_own": (F(ip="40.92.1.1", rdns="mail-oln040092001001.outbound.protection.outlook.com",
                      helo="EUR01-VE1-obe.outbound.protection.outlook.com"),
                    "From: Al <al@hotmail.com>\nX-OriginatorOrg: hotmail.com\n", None),
    "yahoo_from": (F(ip="81.2.69.155", helo="x.example.org"), "From: <y@yahoo.com>\n", None),
    "yahoo_own": (F(ip="98.137.1.1", rdns="sonic1.mail.gq1.yahoo.com",
                    helo="sonic1.mail.gq1.yahoo.com"), "From: <y@yahoo.com>\n", None),
    "juno_from": (F(ip="81.2.69.156", helo="x.example.org"), "From: <j@juno.com>\n"
                  "X-Originating-IP: [81.2.69.201]\nX-Mailer: Juno 5.0\n", None),
    "eudora_from": (F(ip="81.2.69.157", helo="x.example.org"), "From: <e@eudoramail.com>\n",
                    None),
    "aol_trail": (F(ip="81.2.69.158", helo="x.example.org"),
                  "Received: from unknown (HELO mta05bw.example.com) (81.2.69.202) by "
                  "rly-xw01.mx.aol.com with QMQP; 7 Dec 2026 09:59:30 -0000\n", None),
    "gmail_direct": (F(ip="81.2.69.159", helo="x.example.org"), "From: <g@gmail.com>\n", None),
}

RELAY_FUNCTIONS = {"check_all_trusted", "check_no_relays", "check_relays_unparseable",
                   "check_for_numeric_helo", "helo_ip_mismatch", "check_for_no_rdns_dotcom_helo",
                   "check_for_sender_no_reverse", "check_for_forged_received_trail",
                   "check_for_forged_received_ip_helo",
                   "check_for_from_domain_in_received_headers", "check_for_illegal_ip",
                   "check_for_fake_aol_relay_in_rcvd", "check_for_forged_hotmail_received_headers",
                   "check_for_no_hotmail_received_headers",
                   "check_for_forged_eudoramail_received_headers",
                   "check_for_forged_yahoo_received_headers",
                   "check_for_forged_juno_received_headers",
                   "check_for_forged_gmail_received_headers", "gated_through_received_hdr_remover"}


def relay_lines(text: str, sa: bool) -> dict[str, str]:
    pat = (r"dbg: metadata: X-Spam-Relays-(\w+): ?(.*)$" if sa
           else r"^X-Spam-Relays-(\w+): ?(.*)$")
    out = {k: v.rstrip() for k, v in re.findall(pat, text, re.M)}
    # the queue id is Postfix's own: smtpgate, before the MTA, has none
    return {k: v.replace(f"id={QID} ", "id= ") for k, v in out.items()}


@pytest.fixture(scope="module")
def relay_rules() -> set[str]:
    """The relay rules smtpgate loads (subrules too)."""
    lint = lint_list()
    rules = {m.group(1) for m in re.finditer(r"^rule (\S+) header (?:X-Spam-Relays-|ALL-)", lint,
                                             re.M)} | ALL_RULES
    rules |= {m.group(1) for m in re.finditer(r"^rule (\S+) eval (\w+)\t", lint, re.M)
              if m.group(2) in RELAY_FUNCTIONS}
    return rules


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    home = tmp_path_factory.mktemp("sa-home")
    work = tmp_path_factory.mktemp("msgs")
    out = {}
    for name, (facts, fields, cf) in CASES.items():
        body = fields + ("" if "From:" in fields else FROM) + BASE
        sa_args: tuple[str, ...] = ()
        gate_args: list[str] = ["--dump-relays", "--by", BY]
        cf = (cf or "") + CF_ALL
        local = work / f"{name}.cf"
        local.write_text(cf)
        sa_args = tuple(f"--cf={line}" for line in cf.splitlines())
        gate_args += ["--sa-local", str(local)]
        if facts is not None:
            sa_msg = _msg(postfix_rcvd(facts["ip"], facts.get("rdns"), facts["helo"],
                                       facts.get("tls", False), facts.get("auth")) + body)
            gate_args += ["--ip", facts["ip"], "--helo", facts["helo"]]
            if facts.get("rdns"):
                gate_args += ["--name", facts["rdns"]]
            if facts.get("tls"):
                gate_args.append("--tls")
            if facts.get("auth"):
                gate_args += ["--auth", facts["auth"]]
        else:
            sa_msg = _msg(body)
        sa = sa_run(sa_msg, home, "rules,metadata", sa_args)
        sg = gate_run(_msg(body), work / f"{name}.eml", *gate_args)
        out[name] = (sa, sg)
    return out


def test_lint_loads_the_relay_rules(relay_rules):
    lint = lint_list()
    assert "pseudo-header X-Spam-Relays" not in lint
    assert "Plugin::RelayEval is not emulated" not in lint
    for rule in ("__LAST_EXTERNAL_RELAY_NO_AUTH", "__RDNS_NONE", "ALL_TRUSTED", "NO_RELAYS",
                 "RCVD_HELO_IP_MISMATCH", "NO_RDNS_DOTCOM_HELO", "__FORGED_RCVD_TRAIL",
                 "__UNPARSEABLE_RELAY_COUNT"):
        assert rule in relay_rules, rule
    assert len(relay_rules) >= 100, len(relay_rules)


@pytest.mark.time_limit(400)
def test_same_relays_as_spamassassin(runs):
    differ = []
    for name, (sa, sg) in runs.items():
        want, got = relay_lines(sa.stderr, True), relay_lines(sg.stdout, False)
        assert set(want) == {"Trusted", "Untrusted", "Internal", "External"}, (name, sa.stderr[-800:])
        if want != got:
            differ.append(f"{name}:\n  spamassassin {want}\n  smtpgate     {got}")
    print(f"\nrelay chains compared: {len(runs)}; differ: {len(differ)}")
    for d in differ:
        print(d)
    assert differ == []


@pytest.mark.time_limit(400)
def test_same_relay_rule_hits_as_spamassassin(runs, relay_rules):
    pairs = {name: (sa.hits, sg.hits) for name, (sa, sg) in runs.items()}
    out, agree = disagreements(pairs, relay_rules, "relay rule")
    assert out == []
    hits = lambda name: runs[name][1].hits & relay_rules  # noqa: E731
    # the messages do what they were written for, in both
    for name, rule in (("no_rdns", "__RDNS_NONE"), ("dotcom_helo", "NO_RDNS_DOTCOM_HELO"),
                       ("dotcom_helo", "__FORGED_HOTMAIL_RCVD"),
                       ("hotmail_from", "FORGED_HOTMAIL_RCVD2"), ("yahoo_from", "FORGED_YAHOO_RCVD"),
                       ("juno_from", "__FORGED_JUNO_RCVD"),
                       ("eudora_from", "__FORGED_EUDORAMAIL_RCVD"), ("aol_trail", "__FORGED_AOL_RCVD"),
                       ("gmail_direct", "FORGED_GMAIL_RCVD"),
                       ("numeric_helo", "RCVD_HELO_IP_MISMATCH"),
                       ("forged_trail", "__FORGED_RCVD_TRAIL"), ("auth_tls", "ALL_TRUSTED"),
                       ("trusted_all", "ALL_TRUSTED"), ("unparseable", "__UNPARSEABLE_RELAY_COUNT"),
                       ("direct", "__LAST_EXTERNAL_RELAY_NO_AUTH"),
                       ("trusted_all", "T_ALL_T"), ("postfix_chain", "T_ALL_U"),
                       ("postfix_chain", "T_ALL_E"), ("auth_tls", "T_ALL_I")):
        assert rule in hits(name), (name, rule, sorted(hits(name)))
        assert rule in runs[name][0].hits, (name, rule)
    for name, rule in (("dotcom_helo_rdns", "NO_RDNS_DOTCOM_HELO"),
                       ("numeric_helo_same", "RCVD_HELO_IP_MISMATCH"),
                       ("direct", "ALL_TRUSTED"), ("auth_tls", "__LAST_EXTERNAL_RELAY_NO_AUTH"),
                       ("hotmail_own", "FORGED_HOTMAIL_RCVD2"), ("yahoo_own", "FORGED_YAHOO_RCVD"),
                       ("direct", "__GATED_THROUGH_RCVD_REMOVER"), ("direct", "T_ALL_T"),
                       ("direct", "T_ALL_E"), ("postfix_chain", "T_ALL_T"),
                       ("trusted_net", "T_ALL_U")):
        assert rule not in hits(name), (name, rule)


# ---- through the proxy: the session's own facts make the newest relay ----

def test_relays_from_the_session_through_the_proxy(gate_factory, recorder, smtpgate_binary,
                                                  workdir):
    """The loopback client (trusted: SpamAssassin always trusts 127/8) with the HELO it sent is
    the newest relay, ahead of the message's own Received trail, whose public relay is the
    first untrusted one; a rule on each must hit, and only with that HELO."""
    so = plugin_dir(smtpgate_binary).parent.parent / "plugins" / "rules.so"
    if not so.exists():
        pytest.skip(f"{so} not built")
    th = workdir / "thresholds.rules"
    th.write_text('threshold reject 5 "550 5.7.1 Spam score too high"\n')
    local = workdir / "local.cf"
    local.write_text(
        "header LOCAL_SESSION_RELAY X-Spam-Relays-Trusted =~ /^\\[ ip=127\\.0\\.0\\.1 rdns=\\S* "
        "helo=relaytest\\.example\\.org by=\\S+ ident= envfrom= intl=1 id= auth= msa=0 \\]$/\n"
        "score LOCAL_SESSION_RELAY 3\n"
        "header LOCAL_FIRST_UNTRUSTED X-Spam-Relays-Untrusted =~ /^\\[ ip=81\\.2\\.69\\.160 "
        "rdns=out\\.example\\.org helo=out\\.example\\.org by=relay\\.example\\.org /\n"
        "score LOCAL_FIRST_UNTRUSTED 3\n")
    extra = plugin_section("rules", so, files=[str(th)], spamassassin=True,
                           spamassassin_local=[str(local)])
    gate = gate_factory([recorder.address], extra=extra)
    recorder.wait_idle()
    msg = _msg(POSTFIX_PRIOR + FROM + BASE)
    with gate.connect() as c:
        c.ehlo("relaytest.example.org")
        replies = c.mail_transaction("alice@example.org", ["bob@example.net"], msg)
        assert_reply(replies[-1], 550, "5.7.1")
        c.quit()
    line = gate.wait_log(r"plugin rules: rules: score=\S+ required=5\.0 verdict=reject .*").group(0)
    assert re.search(r"\bLOCAL_SESSION_RELAY\(header X-Spam-Relays-Trusted\)", line), line
    assert re.search(r"\bLOCAL_FIRST_UNTRUSTED\(header X-Spam-Relays-Untrusted\)", line), line
    # another HELO: the session's relay no longer fits, the message passes
    with gate.connect() as c:
        c.ehlo("other.example.org")
        replies = c.mail_transaction("alice@example.org", ["bob@example.net"], msg)
        assert_reply(replies[-1], 250)
        c.quit()
    line = gate.wait_log(r"tx from=<alice@example\.org> .*result=accepted.*").group(0)
    assert "LOCAL_SESSION_RELAY" not in line, line
    assert re.search(r"\bLOCAL_FIRST_UNTRUSTED\(3\.0\)", line), line
    recorder.wait_messages(1)
