/*
 * The Received parser against SpamAssassin's own: each line is one of the
 * formats parse_received_line knows (most from its comments), and the
 * expected text is what SpamAssassin 4.0.1 gives for it (its as_string,
 * and the private / no rDNS / rDNS not in headers marks).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rules/sa_received.h"
#include "util/alloc.h"

static const struct {
    const char *line;
    const char *want;
} cases[] = {
    {"from localhost (unknown [127.0.0.1]) by cabbage.jmason.org (Postfix) with ESMTP id A96E18BD97 for <jm@localhost>; Thu, 13 Mar 2003 15:23:15 -0500 (EST)",
     "[ ip=127.0.0.1 rdns= helo=localhost by=cabbage.jmason.org ident= envfrom= intl=0 id=A96E18BD97 auth= msa=0 ] priv=1 nrd=1 nih=0"},
    {"from mail.example.com (mail.example.com [192.0.2.10]) by mx.example.net (Postfix) with ESMTPS id 4Xyz123 for <u@example.net>; Mon,  7 Dec 2026 18:00:00 +0000 (UTC)",
     "[ ip=192.0.2.10 rdns=mail.example.com helo=mail.example.com by=mx.example.net ident= envfrom= intl=0 id=4Xyz123 auth= msa=0 ] priv=0 nrd=0 nih=0"},
    {"from 207.8.214.3 (unknown[211.94.164.65]) by puzzle.pobox.com (Postfix) with SMTP id 9029AFB732; Sat,  8 Nov 2003 17:57:46 -0500 (EST)",
     "[ ip=211.94.164.65 rdns= helo=207.8.214.3 by=puzzle.pobox.com ident= envfrom= intl=0 id=9029AFB732 auth= msa=0 ] priv=0 nrd=1 nih=0"},
    {"from client.example.org (client.example.org [198.51.100.7]) (Authenticated sender: joe) by smtp.example.org (Postfix) with ESMTPSA id 0ABC; Mon, 7 Dec 2026 10:00:00 +0100",
     "[ ip=198.51.100.7 rdns=client.example.org helo=client.example.org by=smtp.example.org ident= envfrom= intl=0 id=0ABC auth=ESMTPSA msa=0 ] priv=0 nrd=0 nih=0"},
    {"from mail1.insuranceiq.com (host66.insuranceiq.com [65.217.159.66] (may be forged)) by dogma.slashnull.org (8.11.6/8.11.6) with ESMTP id h2F0c2x31856 for <jm@jmason.org>; Sat, 15 Mar 2003 00:38:03 GMT",
     "[ ip=65.217.159.66 rdns=host66.insuranceiq.com helo=mail1.insuranceiq.com by=dogma.slashnull.org ident= envfrom= intl=0 id=h2F0c2x31856 auth= msa=0 ] priv=0 nrd=0 nih=0"},
    {"from ran-out.mx.develooper.com (IDENT:qmailr@one.develooper.com [64.81.84.115]) by dogma.slashnull.org (8.11.6/8.11.6) with SMTP id h381Vvf19860 for <jm-cpan@jmason.org>; Tue, 8 Apr 2003 02:31:57 +0100",
     "[ ip=64.81.84.115 rdns=one.develooper.com helo=ran-out.mx.develooper.com by=dogma.slashnull.org ident=qmailr envfrom= intl=0 id=h381Vvf19860 auth= msa=0 ] priv=0 nrd=0 nih=0"},
    {"from roissy (p573.as1.exs.dublin.eircom.net [159.134.226.61]) (authenticated bits=0) by slate.dublin.wbtsystems.com (8.12.6/8.12.6) with ESMTP id g9MFWcvb068860 for <jm@jmason.org>; Tue, 22 Oct 2002 16:32:39 +0100 (IST)",
     "[ ip=159.134.226.61 rdns=p573.as1.exs.dublin.eircom.net helo=roissy by=slate.dublin.wbtsystems.com ident= envfrom= intl=0 id=g9MFWcvb068860 auth=Sendmail msa=0 ] priv=0 nrd=0 nih=0"},
    {"from mail.sxptt.zj.cn ([218.0.185.24]) by dogma.slashnull.org (8.11.6/8.11.6) with ESMTP id h2FH0Zx11330 for <webmaster@efi.ie>; Sat, 15 Mar 2003 17:00:41 GMT",
     "[ ip=218.0.185.24 rdns= helo=mail.sxptt.zj.cn by=dogma.slashnull.org ident= envfrom= intl=0 id=h2FH0Zx11330 auth= msa=0 ] priv=0 nrd=1 nih=0"},
    {"from [61.174.163.26] (helo=host) by sc8-sf-list1.sourceforge.net with smtp (Exim 3.31-VA-mm2 #1 (Debian)) id 18t2z0-0001NX-00 for <razor-users@lists.sourceforge.net>; Wed, 12 Mar 2003 01:57:10 -0800",
     "[ ip=61.174.163.26 rdns= helo=host by=sc8-sf-list1.sourceforge.net ident= envfrom= intl=0 id=18t2z0-0001NX-00 auth= msa=0 ] priv=0 nrd=0 nih=1"},
    {"from [218.19.142.229] (helo=hotmail.com ident=yiuhyotp) by yzordderrex with smtp (Exim 3.35 #1 (Debian)) id 194BE5-0005Zh-00; Sat, 12 Apr 2003 03:58:53 +0100",
     "[ ip=218.19.142.229 rdns= helo=hotmail.com by=yzordderrex ident=yiuhyotp envfrom= intl=0 id=194BE5-0005Zh-00 auth= msa=0 ] priv=0 nrd=0 nih=1"},
    {"from sc8-sf-list1-b.sourceforge.net ([10.3.1.13] helo=sc8-sf-list1.sourceforge.net) by sc8-sf-list2.sourceforge.net with esmtp (Exim 3.31-VA-mm2 #1 (Debian)) id 18t301-0007Bh-00; Wed, 12 Mar 2003 01:58:13 -0800",
     "[ ip=10.3.1.13 rdns=sc8-sf-list1-b.sourceforge.net helo=sc8-sf-list1.sourceforge.net by=sc8-sf-list2.sourceforge.net ident= envfrom= intl=0 id=18t301-0007Bh-00 auth= msa=0 ] priv=1 nrd=0 nih=0"},
    {"from mail.ssccbelen.edu.pe ([216.244.149.154]) by yzordderrex with esmtp (Exim 3.35 #1 (Debian)) id 18tqiz-000702-00 for <jm@example.com>; Fri, 14 Mar 2003 15:03:57 +0000",
     "[ ip=216.244.149.154 rdns=mail.ssccbelen.edu.pe helo=mail.ssccbelen.edu.pe by=yzordderrex ident= envfrom= intl=0 id=18tqiz-000702-00 auth= msa=0 ] priv=0 nrd=0 nih=0"},
    {"from server040.webpack.hosteurope.de ([80.237.130.48]:52313) by vps832469583.serverpool.info with esmtps (TLS-1.0:DHE_RSA_3DES_EDE_CBC_SHA:24) (Exim 4.50) id 1GzVLs-0002Oz-7b; Thu, 28 Dec 2006 10:00:00 +0000",
     "[ ip=80.237.130.48 rdns=server040.webpack.hosteurope.de helo=server040.webpack.hosteurope.de by=vps832469583.serverpool.info ident= envfrom= intl=0 id=1GzVLs-0002Oz-7b auth= msa=0 ] priv=0 nrd=0 nih=0"},
    {"from boggle.ihug.co.nz [203.109.252.209] by grunt6.ihug.co.nz with esmtp (Exim 3.35 #1 (Debian)) id 18SWRe-0006X6-00; Sun, 29 Dec 2002 18:57:06 +1300",
     "[ ip=203.109.252.209 rdns=boggle.ihug.co.nz helo=boggle.ihug.co.nz by=grunt6.ihug.co.nz ident= envfrom= intl=0 id=18SWRe-0006X6-00 auth= msa=0 ] priv=0 nrd=0 nih=0"},
    {"from andrew by trinity.supernews.net with local (Exim 4.12) id 18xeL6-000Dn1-00; Tue, 25 Mar 2003 02:39:00 +0000",
     "IGNORED"},
    {"from postfix3-2.free.fr (HELO machine.domain.com) (foobar@213.228.0.169) by totor.bouissou.net with SMTP; 14 Nov 2003 08:05:50 -0000",
     "[ ip=213.228.0.169 rdns=postfix3-2.free.fr helo=machine.domain.com by=totor.bouissou.net ident=foobar envfrom= intl=0 id= auth= msa=0 ] priv=0 nrd=0 nih=0"},
    {"from unknown (HELO terpsichore.farfalle.com) (jdavid@[216.254.40.70]) (envelope-sender <jdavid@farfalle.com>) by mail13.speakeasy.net (qmail-ldap-1.03) with SMTP for <jm@jmason.org>; 12 Feb 2003 18:23:19 -0000",
     "[ ip=216.254.40.70 rdns= helo=terpsichore.farfalle.com by=mail13.speakeasy.net ident=jdavid envfrom=jdavid@farfalle.com intl=0 id= auth= msa=0 ] priv=0 nrd=0 nih=1"},
    {"from unknown (HELO feux01a-isp) (213.199.4.210) by totor.bouissou.net with SMTP; 1 Nov 2003 07:05:19 -0000",
     "[ ip=213.199.4.210 rdns= helo=feux01a-isp by=totor.bouissou.net ident= envfrom= intl=0 id= auth= msa=0 ] priv=0 nrd=0 nih=1"},
    {"from inet-vrs-05.redmond.corp.microsoft.com ([157.54.6.157]) by INET-IMC-05.redmond.corp.microsoft.com with Microsoft SMTPSVC(5.0.2195.6624); Thu, 6 Mar 2003 12:02:35 -0800",
     "[ ip=157.54.6.157 rdns= helo=inet-vrs-05.redmond.corp.microsoft.com by=INET-IMC-05.redmond.corp.microsoft.com ident= envfrom= intl=0 id= auth= msa=0 ] priv=0 nrd=0 nih=1"},
    {"from EXC-DAG-02.global.net (10.45.252.152) by EXC-DAG-02.global.net (10.45.252.152) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256) id 15.1.1261.35; Mon, 29 Oct 2018 11:17:19 +0100",
     "[ ip=10.45.252.152 rdns=EXC-DAG-02.global.net helo=EXC-DAG-02.global.net by=EXC-DAG-02.global.net ident= envfrom= intl=0 id=15.1.1261.35 auth= msa=0 ] priv=1 nrd=0 nih=0"},
    {"from AM5PR0402MB2836.eurprd04.prod.outlook.com ([fe80::19bd:c588:dd17:5226]) by AM5PR0402MB2836.eurprd04.prod.outlook.com ([fe80::19bd:c588:dd17:5226%6]) with mapi id 15.20.1943.023; Wed, 5 Jun 2019 10:17:08 +0000",
     "[ ip=fe80::19bd:c588:dd17:5226 rdns= helo=AM5PR0402MB2836.eurprd04.prod.outlook.com by=AM5PR0402MB2836.eurprd04.prod.outlook.com ident= envfrom= intl=0 id= auth= msa=0 ] priv=1 nrd=0 nih=1"},
    {"from mail pickup service by mail1.insuranceiq.com with Microsoft SMTPSVC; Thu, 13 Feb 2003 19:05:39 -0500",
     "IGNORED"},
    {"(qmail 27981 invoked by uid 225); 14 Mar 2003 07:24:34 -0000",
     "IGNORED"},
    {"by oak.ein.cz (Postfix, from userid 1002) id DABBD1BED3; Thu, 13 Feb 2003 14:02:21 +0100 (CET)",
     "IGNORED"},
    {"from virtual-access.org by bolero.conactive.com ; Thu, 20 Feb 2003 23:32:58 +0100",
     "IGNORED"},
    {"from [86.122.158.69] by mta2.iomartmail.com; Thu, 2 Aug 2007 21:50:04 -0200",
     "[ ip=86.122.158.69 rdns= helo=!86.122.158.69! by=mta2.iomartmail.com ident= envfrom= intl=0 id= auth= msa=0 ] priv=0 nrd=0 nih=1"},
    {"from cabbage.jmason.org [127.0.0.1] by localhost with IMAP (fetchmail-5.9.0) for jm@localhost (single-drop); Thu, 13 Mar 2003 20:39:56 -0800 (PST)",
     "IGNORED"},
    {"from localhost (mailnull@localhost) by x.org (8.12.6/8.9.3) with SMTP id h2R2iivG093740; Wed, 26 Mar 2003 20:44:44 -0600 (CST) (envelope-from x@x.org)",
     "IGNORED"},
    {"from 213.123.174.21 by lw11fd.law11.hotmail.msn.com with HTTP; Wed, 24 Jul 2002 16:36:44 GMT",
     "[ ip=213.123.174.21 rdns= helo= by=lw11fd.law11.hotmail.msn.com ident= envfrom= intl=0 id= auth=HTTP msa=0 ] priv=0 nrd=0 nih=1"},
    {"from [193.220.176.134] by web40310.mail.yahoo.com via HTTP; Wed, 12 Feb 2003 14:22:21 PST",
     "[ ip=193.220.176.134 rdns= helo= by=web40310.mail.yahoo.com ident= envfrom= intl=0 id= auth= msa=0 ] priv=0 nrd=0 nih=1"},
    {"from x71-x56-x24-5.webspeed.dk (HELO niels) (69.96.3.15) by la.mx.develooper.com (qpsmtpd/0.27-dev) with SMTP; Fri, 02 Jan 2004 19:26:52 -0800",
     "[ ip=69.96.3.15 rdns=x71-x56-x24-5.webspeed.dk helo=niels by=la.mx.develooper.com ident= envfrom= intl=0 id= auth= msa=0 ] priv=0 nrd=0 nih=0"},
    {"FROM hackers.mr.itd.umich.edu (smtp.mail.umich.edu [141.211.14.81]) BY madman.mr.itd.umich.edu ID 434B508E.174A6.13932 ; 11 Oct 2005 01:41:34 -0400",
     "[ ip=141.211.14.81 rdns=smtp.mail.umich.edu helo=hackers.mr.itd.umich.edu by=madman.mr.itd.umich.edu ident= envfrom= intl=0 id=434B508E.174A6.13932 auth= msa=0 ] priv=0 nrd=0 nih=0"},
    {"(from localhost [24.180.47.240]) by host.name (NAVGW 2.5.2.12) with SMTP id M2006060503484615455 for <user@domain.co.uk>; Mon, 05 Jun 2006 03:48:47 +0100",
     "[ ip=24.180.47.240 rdns= helo=localhost by=host.name ident= envfrom= intl=0 id=M2006060503484615455 auth= msa=0 ] priv=0 nrd=0 nih=1"},
    {"from something weird here",
     "UNPARSEABLE"},
    {"from Agni (localhost [::ffff:127.0.0.1]) (TLS: TLSv1/SSLv3, 168bits,DES-CBC3-SHA) by agni.forevermore.net with esmtp; Mon, 28 Oct 2002 14:48:52 -0800",
     "[ ip=127.0.0.1 rdns=localhost helo=Agni by=agni.forevermore.net ident= envfrom= intl=0 id= auth= msa=0 ] priv=1 nrd=0 nih=0"},
    {"from helo.example ([IPv6:2001:db8::1]) by mx.example.net (Postfix) with ESMTP id 1234; Mon, 7 Dec 2026 10:00:00 +0000",
     "[ ip=2001:db8::1 rdns= helo=helo.example by=mx.example.net ident= envfrom= intl=0 id=1234 auth= msa=0 ] priv=0 nrd=1 nih=0"},
    {"from 1.2.3.4 (unknown [1.2.3.4]) by mx.example.net (Postfix) with ESMTP id ABCDE; Mon, 7 Dec 2026 10:00:00 +0000",
     "[ ip=1.2.3.4 rdns= helo=1.2.3.4 by=mx.example.net ident= envfrom= intl=0 id=ABCDE auth= msa=0 ] priv=0 nrd=1 nih=0"},
    {"from friend.example.com (a.b.example.com. [203.0.113.9]) by mx.example.net (Postfix) with ESMTP id F00; Mon, 7 Dec 2026 10:00:00 +0000",
     "[ ip=203.0.113.9 rdns=a.b.example.com helo=friend.example.com by=mx.example.net ident= envfrom= intl=0 id=F00 auth= msa=0 ] priv=0 nrd=0 nih=0"},
    {"from bad<host>|x (unknown [203.0.113.10]) by mx.example.net (Postfix) with ESMTP id Q1; Mon, 7 Dec 2026 10:00:00 +0000",
     "[ ip=203.0.113.10 rdns= helo=bad!host!!x by=mx.example.net ident= envfrom= intl=0 id= auth= msa=0 ] priv=0 nrd=1 nih=0"},
    {"from gandalf ([4.37.75.131]) (authenticated bits=0) by herald.cc.purdue.edu (8.12.5/8.12.5/herald) with ESMTP id g9JLefrm028228 for <spamassassin-talk@lists.sourceforge.net>; Sat, 19 Oct 2002 16:40:41 -0500 (EST)",
     "[ ip=4.37.75.131 rdns= helo=gandalf by=herald.cc.purdue.edu ident= envfrom= intl=0 id=g9JLefrm028228 auth=Sendmail msa=0 ] priv=0 nrd=1 nih=0"},
    {"from mx.example (mx.example [203.0.113.5]) by relay.example (8.14.4/8.14.4) with ESMTP id abc123 (envelope-from <bounce@example.org>); Mon, 7 Dec 2026 10:00:00 +0000",
     "[ ip=203.0.113.5 rdns=mx.example helo=mx.example by=relay.example ident= envfrom=bounce@example.org intl=0 id=abc123 auth= msa=0 ] priv=0 nrd=0 nih=0"},
    {"from X-Originating-IP: 203.0.113.77",
     "[ ip=203.0.113.77 rdns= helo= by= ident= envfrom= intl=0 id= auth= msa=0 ] priv=0 nrd=0 nih=1"},
};

static char *describe(const char *line, size_t n, enum sa_rcvd_rc *rcp)
{
    struct sa_relay r;
    enum sa_rcvd_rc rc = sa_received_parse(line, n, &r, NULL);
    *rcp = rc;
    if (rc == SA_RCVD_IGNORED)
        return strdup("IGNORED");
    if (rc == SA_RCVD_UNPARSEABLE)
        return strdup("UNPARSEABLE");
    if (rc != SA_RCVD_PARSED)
        return NULL;
    char *s = NULL, *out = NULL;
    assert_int_equal(sa_relay_string(&r, &s), 0);
    assert_true(asprintf(&out, "%s priv=%d nrd=%d nih=%d", s, r.ip_private, r.no_reverse_dns,
                         r.rdns_not_in_headers) > 0);
    free(s);
    sa_relay_clear(&r);
    return out;
}

static void test_formats_as_spamassassin(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum sa_rcvd_rc rc;
        char *got = describe(cases[i].line, strlen(cases[i].line), &rc);
        assert_non_null(got);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("line %zu: %s\n got  %s\n want %s", i, cases[i].line, got, cases[i].want);
        free(got);
    }
    assert_int_equal(sa_received_bad_patterns(), 0);
}

/* Folding and blanks of any kind are one space; the semicolons closing the
 * field are dropped: the same relay as the one-line form. */
static void test_folding_is_one_space(void **state)
{
    (void)state;
    const char *folded = "from mail.example.com (mail.example.com [192.0.2.10])\r\n\tby "
                         "mx.example.net (Postfix) with ESMTP id 4Xyz123;\r\n  Mon,  7 Dec 2026 "
                         "18:00:00 +0000 (UTC);;\r\n";
    enum sa_rcvd_rc rc;
    char *got = describe(folded, strlen(folded), &rc);
    assert_string_equal(got, "[ ip=192.0.2.10 rdns=mail.example.com helo=mail.example.com "
                             "by=mx.example.net ident= envfrom= intl=0 id=4Xyz123 auth= msa=0 ] "
                             "priv=0 nrd=0 nih=0");
    free(got);
}

static void test_fetcher_and_qmail_scanner_marks(void **state)
{
    (void)state;
    struct sa_relay r;
    struct sa_rcvd_extra x;
    const char *fetch = "from cabbage.jmason.org [127.0.0.1] by localhost with IMAP "
                        "(fetchmail-5.9.0) for jm@localhost (single-drop)";
    assert_int_equal(sa_received_parse(fetch, strlen(fetch), &r, &x), SA_RCVD_IGNORED);
    assert_true(x.pop_fetcher);
    assert_null(x.qmail_scanner_envfrom);
    sa_rcvd_extra_clear(&x);
    const char *qms = "from 156.56.111.196 by blazing.arsecandle.org (envelope-from "
                      "<gentoo@lists.gentoo.org>, uid 502) with qmail-scanner-1.24 (clamdscan: "
                      "0.80/594.); 06 Feb 2005 21:11:38 -0000";
    assert_int_equal(sa_received_parse(qms, strlen(qms), &r, &x), SA_RCVD_IGNORED);
    assert_false(x.pop_fetcher);
    assert_string_equal(x.qmail_scanner_envfrom, "gentoo@lists.gentoo.org");
    sa_rcvd_extra_clear(&x);
}

static void test_private_ranges(void **state)
{
    (void)state;
    const char *yes[] = {"10.1.2.3", "127.0.0.1", "169.254.1.1", "172.16.0.1", "172.31.255.1",
                         "192.168.1.1", "100.64.0.1", "fe80::1", "::1", "::ffff:10.0.0.1"};
    const char *no[] = {"172.32.0.1", "100.128.0.1", "192.0.2.1", "8.8.8.8", "2001:db8::1",
                        "11.0.0.1"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_int_equal(sa_ip_is_private(yes[i]), 1);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_int_equal(sa_ip_is_private(no[i]), 0);
}

/* Out of memory at every allocation of a parse: an error, never a crash
 * or a leak, and the parse succeeds once memory is back. */
static void test_out_of_memory(void **state)
{
    (void)state;
    const char *line = cases[5].line;
    for (int n = 0; n < 200; n++) {
        struct sa_relay r;
        util_alloc_fail_after(n);
        enum sa_rcvd_rc rc = sa_received_parse(line, strlen(line), &r, NULL);
        util_alloc_fail_after(-1);
        if (rc == SA_RCVD_PARSED) {
            sa_relay_clear(&r);
            return;
        }
        assert_int_equal(rc, SA_RCVD_NOMEM);
    }
    fail_msg("never parsed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats_as_spamassassin),
        cmocka_unit_test(test_folding_is_one_space),
        cmocka_unit_test(test_fetcher_and_qmail_scanner_marks),
        cmocka_unit_test(test_private_ranges),
        cmocka_unit_test(test_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
