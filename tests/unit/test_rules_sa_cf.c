/*
 * Unit tests for the SpamAssassin .cf parser (rules/sa_cf.c), its
 * conditions (sa_cond.c) and templates (sa_tmpl.c), over small snippets
 * written for these tests: every rule kind, the pattern delimiters and
 * modifiers, comments and `\#`, score sets and relative scores, default
 * scores, describe/tflags/priority before and after the rule, lang lines,
 * if/ifplugin/else/endif with the reasons of what was skipped, the
 * header and report settings (sa_hdrconf.c) in file order,
 * require_version, include (relative, loop), ReplaceTags as the plugin
 * expands, redefinition, and the warnings of malformed lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_cf.h"

static struct sa_conf *parse_env(const char *src, const struct sa_env *env)
{
    struct sa_conf *c = sa_conf_new(env, NULL, NULL);
    assert_non_null(c);
    assert_int_equal(sa_cf_parse(c, "/r/t.cf", src, strlen(src)), 0);
    assert_int_equal(sa_conf_finish(c), 0);
    return c;
}

static struct sa_conf *parse(const char *src)
{
    return parse_env(src, &sa_env_default);
}

static const struct sa_rule *rule(const struct sa_conf *c, const char *name)
{
    const struct sa_rule *r = sa_conf_rule(c, name);
    if (r == NULL)
        fail_msg("no rule %s", name);
    return r;
}

static size_t tally(const struct sa_tally *t, const char *what)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->v[i].what, what) == 0)
            return t->v[i].count;
    return 0;
}

static void test_rule_kinds(void **state)
{
    (void)state;
    struct sa_conf *c = parse("header  SUBJ_A  Subject =~ /^free/i\n"
                              "header SUBJ_N Subject:raw !~ m{=\\?utf-8}i [if-unset: none here]\n"
                              "header FROM_ADDR From:addr =~ /\\@example\\.com$/\n"
                              "header HAS_XM exists:X-Mailer\n"
                              "header MISS eval:check_for_missing_to_header()\n"
                              "header RBL eval:check_rbl('zen', 'zen.example.')\n"
                              "body   B1  m!click\\s+here!is\n"
                              "rawbody R1 /<div/\n"
                              "full   F1  /^From /m\n"
                              "uri    U1  m<^https?://\\d+\\.>\n"
                              "mimeheader M1 Content-Type =~ /pdf/\n"
                              "meta   META1  (B1 && !R1) || SUBJ_A + F1 > 1.5\n"
                              "body   BE eval:check_stock_info('5')\n");
    const struct sa_rule *r = rule(c, "SUBJ_A");
    assert_int_equal(r->kind, SA_HEADER);
    assert_string_equal(r->field, "Subject");
    assert_string_equal(r->re, "^free");
    assert_string_equal(r->mods, "i");
    assert_false(r->negate);
    assert_int_equal(r->line, 1);
    assert_string_equal(r->file, "/r/t.cf");
    r = rule(c, "SUBJ_N");
    assert_string_equal(r->field, "Subject:raw");
    assert_true(r->negate);
    assert_string_equal(r->re, "=\\?utf-8");
    assert_string_equal(r->unset, "none here");
    r = rule(c, "FROM_ADDR");
    assert_string_equal(r->field, "From:addr");
    assert_string_equal(r->re, "\\@example\\.com$");
    r = rule(c, "HAS_XM");
    assert_true(r->exists);
    assert_string_equal(r->field, "X-Mailer");
    assert_null(r->re);
    r = rule(c, "MISS");
    assert_string_equal(r->eval, "check_for_missing_to_header");
    assert_string_equal(r->eval_args, "");
    r = rule(c, "RBL");
    assert_string_equal(r->eval, "check_rbl");
    assert_string_equal(r->eval_args, "'zen', 'zen.example.'");
    r = rule(c, "B1");
    assert_int_equal(r->kind, SA_BODY);
    assert_string_equal(r->re, "click\\s+here");
    assert_string_equal(r->mods, "is");
    assert_int_equal(rule(c, "R1")->kind, SA_RAWBODY);
    assert_int_equal(rule(c, "F1")->kind, SA_FULL);
    assert_string_equal(rule(c, "F1")->mods, "m");
    r = rule(c, "U1");
    assert_int_equal(r->kind, SA_URI);
    assert_string_equal(r->re, "^https?://\\d+\\.");
    r = rule(c, "M1");
    assert_int_equal(r->kind, SA_MIMEHEADER);
    assert_string_equal(r->field, "Content-Type");
    r = rule(c, "META1");
    assert_int_equal(r->kind, SA_META);
    assert_string_equal(r->meta, "(B1 && !R1) || SUBJ_A + F1 > 1.5");
    assert_string_equal(rule(c, "BE")->eval, "check_stock_info");
    assert_int_equal(c->warnings.n, 0);
    sa_conf_free(c);
}

static void test_comments_and_lines(void **state)
{
    (void)state;
    struct sa_conf *c = parse("# a comment\n"
                              "   \n"
                              "body HASH /a\\#b/   # trailing comment\n"
                              "\tbody  INDENTED  /x/\r\n"
                              "BODY UPPER /y/\n"
                              "body ESCAPED /a\\/b\\\\/\n"
                              "body ANGLE m<a>b>\n"
                              "body BRACE m{a{1,2}}\n");
    assert_string_equal(rule(c, "HASH")->re, "a#b");
    assert_string_equal(rule(c, "INDENTED")->re, "x");
    assert_int_equal(rule(c, "INDENTED")->line, 4);
    /* settings are case-insensitive, as in SpamAssassin */
    assert_string_equal(rule(c, "UPPER")->re, "y");
    /* an escaped delimiter stays; a bracket pair's closer may stand inside */
    assert_string_equal(rule(c, "ESCAPED")->re, "a\\/b\\\\");
    assert_null(sa_conf_rule(c, "ANGLE"));
    assert_string_equal(rule(c, "BRACE")->re, "a{1,2}");
    assert_int_equal(c->warnings.n, 1);
    sa_conf_free(c);
}

static void test_scores(void **state)
{
    (void)state;
    struct sa_conf *c = parse("score EARLY 2.5\n"
                              "body EARLY /e/\n"
                              "body FOUR /f/\n"
                              "score FOUR 0 1.5 -2 3.25\n"
                              "body REL /r/\n"
                              "score REL 1\n"
                              "score REL (0.5) (0) (1) (-1)\n"
                              "body DEFAULT /d/\n"
                              "body T_TESTING /t/\n"
                              "body NICE /n/\n"
                              "tflags NICE nice\n"
                              "body LATER /l/\n"
                              "score LATER 3\n"
                              "score LATER 0\n"
                              "score BAD 1 2\n"
                              "score BAD2 x\n"
                              "score NEWREL (1)\n");
    const struct sa_rule *r = rule(c, "EARLY");
    assert_true(r->has_score);
    assert_true(r->score[0] == 2.5 && r->score[3] == 2.5);
    r = rule(c, "FOUR");
    assert_true(r->score[0] == 0 && r->score[1] == 1.5 && r->score[2] == -2 && r->score[3] == 3.25);
    r = rule(c, "REL");
    assert_true(r->score[0] == 1.5 && r->score[1] == 1 && r->score[2] == 2 && r->score[3] == 0);
    assert_true(rule(c, "DEFAULT")->score[0] == 1.0);
    assert_false(rule(c, "DEFAULT")->has_score);
    assert_true(rule(c, "T_TESTING")->score[1] == 0.01);
    assert_true(rule(c, "NICE")->score[0] == -1.0);
    assert_true(rule(c, "LATER")->score[0] == 0);
    assert_null(sa_conf_rule(c, "BAD"));
    assert_null(sa_conf_rule(c, "BAD2"));
    assert_null(sa_conf_rule(c, "NEWREL"));
    assert_int_equal(c->warnings.n, 3);
    assert_int_equal(c->warnings.v[0].line, 15);
    assert_int_equal(c->warnings.v[1].line, 16);
    assert_int_equal(c->warnings.v[2].line, 17);
    assert_non_null(strstr(c->warnings.v[2].msg, "relative score"));
    assert_int_equal(sa_score_set(&sa_env_default), 0);
    struct sa_env net = sa_env_default;
    net.network = true;
    assert_int_equal(sa_score_set(&net), 1);
    sa_conf_free(c);
}

static void test_rule_settings(void **state)
{
    (void)state;
    struct sa_env de = sa_env_default;
    de.lang = "de_DE.UTF-8";
    const char *src = "describe D1 Before the rule\n"
                      "body D1 /x/\n"
                      "lang de describe D1 Vor der Regel\n"
                      "tflags D1 multiple maxhits=7 nice\n"
                      "priority D1 -400\n"
                      "priority D1 x\n";
    struct sa_conf *c = parse(src);
    const struct sa_rule *r = rule(c, "D1");
    assert_string_equal(r->describe, "Before the rule");
    assert_string_equal(r->tflags, "multiple maxhits=7 nice");
    assert_true(sa_tflag(r, "multiple"));
    assert_true(sa_tflag(r, "nice"));
    assert_false(sa_tflag(r, "net"));
    assert_false(sa_tflag(r, "max"));
    assert_int_equal(sa_maxhits(r), 7);
    assert_int_equal(r->priority, -400);
    assert_int_equal(c->warnings.n, 1);
    assert_int_equal(c->warnings.v[0].line, 6);
    sa_conf_free(c);
    c = parse_env(src, &de);
    assert_string_equal(rule(c, "D1")->describe, "Vor der Regel");
    sa_conf_free(c);
}

static void test_redirector_pattern(void **state)
{
    (void)state;
    const char *src = "redirector_pattern /^http:\\/\\/r\\.example\\/(.*)$/i\n"
                      "redirector_pattern\n"
                      "redirector_pattern m'^https?://x\\.example/\\?u=(.*?)(?:$|&)'i\n"
                      "redirector_pattern /a(/\n"
                      "redirector_pattern ^http://nodelim/(.*)\n";
    struct sa_conf *c = parse(src);
    assert_int_equal(sa_redirs_count(c->redirs), 2);
    assert_int_equal(tally(&c->ignored, "redirector_pattern"), 0);
    assert_int_equal(c->warnings.n, 3);
    assert_string_equal(c->warnings.v[0].file, "/r/t.cf");
    assert_int_equal(c->warnings.v[0].line, 2);
    assert_non_null(strstr(c->warnings.v[0].msg, "redirector_pattern: requires a value"));
    assert_int_equal(c->warnings.v[1].line, 4);
    assert_non_null(strstr(c->warnings.v[1].msg, "redirector_pattern: invalid pattern"));
    assert_int_equal(c->warnings.v[2].line, 5);
    assert_non_null(strstr(c->warnings.v[2].msg, "missing regexp delimiters"));
    size_t off, len;
    const char *u = "http://x.example/?u=http://t.example/&z";
    assert_true(sa_redirs_target(c->redirs, u, strlen(u), &off, &len));
    assert_int_equal(len, strlen("http://t.example/"));
    assert_memory_equal(u + off, "http://t.example/", len);
    sa_conf_free(c);
    /* a set without the setting has none */
    c = parse("body B /x/\n");
    assert_null(c->redirs);
    sa_conf_free(c);
}

static void test_conditionals(void **state)
{
    (void)state;
    struct sa_conf *c = parse("ifplugin Mail::SpamAssassin::Plugin::URIDNSBL\n"
                              "header DNS1 eval:check_uridnsbl('a', 'b.')\n"
                              "header DNS2 eval:check_uridnsbl('a', 'c.')\n"
                              "score DNS1 2\n"
                              "endif\n"
                              "ifplugin Mail::SpamAssassin::Plugin::ReplaceTags\n"
                              "body RT1 /x/\n"
                              "endif\n"
                              "if !plugin(Mail::SpamAssassin::Plugin::ReplaceTags)\n"
                              "body RT2 /x/\n"
                              "else\n"
                              "body RT3 /x/\n"
                              "endif\n"
                              "if (version >= 3.004000)\n"
                              "  body V1 /v/\n"
                              "  if (version >= 4.001000)\n"
                              "    body V2 /v/\n"
                              "  else\n"
                              "    body V3 /v/\n"
                              "  endif\n"
                              "endif\n"
                              "if can(Mail::SpamAssassin::Conf::feature_get_host)\n"
                              "body CAP /x/\n"
                              "endif\n"
                              "if can(Mail::SpamAssassin::Conf::perl_min_version_5010000) && "
                              "!(local_tests_only == 0)\n"
                              "body PERL /x/\n"
                              "endif\n"
                              "ifplugin Mail::SpamAssassin::Plugin::TxRep\n"
                              "  if (version >= 3.0)\n"
                              "  body FM1 /x/\n"
                              "  else\n"
                              "  body FM2 /x/\n"
                              "  endif\n"
                              "endif\n"
                              "if version >>> 3\n"
                              "body BADCOND /x/\n"
                              "endif\n"
                              "endif\n"
                              "ifplugin Mail::SpamAssassin::Plugin::Bayes\n"
                              "body UNCLOSED /x/\n");
    assert_null(sa_conf_rule(c, "DNS1")); /* its score line was inside the block too */
    assert_null(sa_conf_rule(c, "DNS2"));
    assert_non_null(sa_conf_rule(c, "RT1"));
    assert_null(sa_conf_rule(c, "RT2"));
    assert_non_null(sa_conf_rule(c, "RT3"));
    assert_non_null(sa_conf_rule(c, "V1"));
    assert_null(sa_conf_rule(c, "V2"));
    assert_non_null(sa_conf_rule(c, "V3"));
    assert_null(sa_conf_rule(c, "CAP"));
    assert_non_null(sa_conf_rule(c, "PERL"));
    assert_null(sa_conf_rule(c, "FM1"));
    assert_null(sa_conf_rule(c, "FM2"));
    assert_null(sa_conf_rule(c, "BADCOND"));
    assert_null(sa_conf_rule(c, "UNCLOSED"));
    assert_int_equal(
        tally(&c->skipped, "plugin Mail::SpamAssassin::Plugin::URIDNSBL is not emulated"), 2);
    assert_int_equal(tally(&c->skipped, "plugin Mail::SpamAssassin::Plugin::TxRep is not emulated"),
                     2);
    assert_int_equal(
        tally(&c->skipped, "condition false: if !plugin(Mail::SpamAssassin::Plugin::ReplaceTags)"),
        1);
    assert_int_equal(tally(&c->skipped, "condition false: if (version >= 4.001000)"), 1);
    assert_int_equal(
        tally(&c->skipped,
              "condition false: if can(Mail::SpamAssassin::Conf::feature_get_host)"),
        1);
    assert_int_equal(tally(&c->skipped, "plugin Mail::SpamAssassin::Plugin::Bayes is not emulated"),
                     1);
    assert_int_equal(sa_tally_total(&c->skipped), 9);
    /* the bad condition, the endif too many, the unclosed block */
    assert_int_equal(c->warnings.n, 3);
    assert_int_equal(c->warnings.v[0].line, 35);
    assert_non_null(strstr(c->warnings.v[0].msg, "condition not understood"));
    assert_int_equal(c->warnings.v[1].line, 38);
    assert_int_equal(c->warnings.v[2].line, 0);
    assert_non_null(strstr(c->warnings.v[2].msg, "unclosed"));
    sa_conf_free(c);
}

static void test_require_version(void **state)
{
    (void)state;
    struct sa_conf *c = sa_conf_new(&sa_env_default, NULL, NULL);
    const char *a = "require_version @@VERSION@@\nbody A1 /x/\n";
    const char *b = "body B1 /x/\nrequire_version 3.004006\nbody B2 /x/\nscore B1 3\n";
    const char *d = "require_version 4.000001\nbody D1 /x/\n";
    assert_int_equal(sa_cf_parse(c, "a.cf", a, strlen(a)), 0);
    assert_int_equal(sa_cf_parse(c, "b.cf", b, strlen(b)), 0);
    assert_int_equal(sa_cf_parse(c, "d.cf", d, strlen(d)), 0);
    assert_int_equal(sa_conf_finish(c), 0);
    assert_non_null(sa_conf_rule(c, "A1"));
    assert_non_null(sa_conf_rule(c, "B1"));
    assert_false(rule(c, "B1")->has_score);
    assert_null(sa_conf_rule(c, "B2"));
    assert_non_null(sa_conf_rule(c, "D1"));
    assert_int_equal(c->warnings.n, 1);
    assert_string_equal(c->warnings.v[0].file, "b.cf");
    assert_int_equal(c->warnings.v[0].line, 2);
    assert_int_equal(tally(&c->skipped, "require_version of another SpamAssassin"), 1);
    sa_conf_free(c);
}

struct files {
    const char *names[4];
    const char *texts[4];
    unsigned reads;
};

static int read_cb(void *arg, const char *path, char **data, size_t *len, char **why)
{
    struct files *f = arg;
    for (int i = 0; i < 4 && f->names[i]; i++)
        if (strcmp(path, f->names[i]) == 0) {
            f->reads++;
            *len = strlen(f->texts[i]);
            *data = malloc(*len + 1);
            memcpy(*data, f->texts[i], *len + 1);
            return 0;
        }
    *why = strdup("No such file or directory");
    return -1;
}

static void test_include(void **state)
{
    (void)state;
    struct files fs = {
        {"/etc/sa/sub/inc.cf", "/etc/sa/sub/loop.cf", "/abs.cf"},
        {"body INC1 /x/\ninclude loop.cf\n", "include inc.cf\nbody LOOP1 /y/\n", "body ABS /z/\n"},
        0};
    struct sa_conf *c = sa_conf_new(&sa_env_default, read_cb, &fs);
    const char *main_cf = "include sub/inc.cf\ninclude /abs.cf\ninclude missing.cf\n"
                          "ifplugin Mail::SpamAssassin::Plugin::Foo\ninclude /abs.cf\nendif\n";
    assert_int_equal(sa_cf_parse(c, "/etc/sa/main.cf", main_cf, strlen(main_cf)), 0);
    assert_non_null(sa_conf_rule(c, "INC1"));
    assert_non_null(sa_conf_rule(c, "LOOP1"));
    assert_non_null(sa_conf_rule(c, "ABS"));
    assert_int_equal(fs.reads, 3);
    assert_int_equal(c->warnings.n, 2);
    assert_string_equal(c->warnings.v[0].file, "/etc/sa/sub/loop.cf");
    assert_non_null(strstr(c->warnings.v[0].msg, "read already"));
    assert_string_equal(c->warnings.v[1].file, "/etc/sa/main.cf");
    assert_int_equal(c->warnings.v[1].line, 3);
    assert_non_null(strstr(c->warnings.v[1].msg, "cannot read /etc/sa/missing.cf"));
    sa_conf_free(c);
    /* without a reader (a buffer), include is a warning */
    c = parse("include x.cf\n");
    assert_int_equal(c->warnings.n, 1);
    sa_conf_free(c);
}

static void test_templates(void **state)
{
    (void)state;
    struct sa_conf *c = parse("replace_tag A (?:a|4)\n"
                              "replace_tag B (?:b|8)\n"
                              "replace_tag AB <A><B>\n"
                              "replace_inter W1 \\W?\n"
                              "replace_post P2 {1,2}\n"
                              "replace_pre PR \\b\n"
                              "body T1 /<A><B>c/i\n"
                              "body T2 /<inter W1><post P2>x<A><B>/\n"
                              "body T3 /<pre PR><A>/\n"
                              "body T4 /<AB>z<UNKNOWN>/\n"
                              "body NOTNAMED /<A>/\n"
                              "body T5 /<inter W1><A><B>/\n"
                              "replace_rules T1 T2 T3\n"
                              "replace_rules T4 T5\n"
                              "replace_tag A (?:a|@)\n");
    /* the last definition of a tag wins: templates are applied at the end */
    assert_string_equal(rule(c, "T1")->re, "(?:a|@)(?:b|8)c");
    assert_string_equal(rule(c, "T2")->re, "x(?:a|@){1,2}\\W?(?:b|8){1,2}");
    assert_string_equal(rule(c, "T3")->re, "\\b(?:a|@)");
    assert_string_equal(rule(c, "T4")->re, "(?:a|@)(?:b|8)z<UNKNOWN>");
    assert_int_equal(rule(c, "T4")->re_len, strlen("(?:a|@)(?:b|8)z<UNKNOWN>"));
    assert_string_equal(rule(c, "NOTNAMED")->re, "<A>");
    /* inter goes between tags, never before the first */
    assert_string_equal(rule(c, "T5")->re, "(?:a|@)\\W?(?:b|8)");
    sa_conf_free(c);
    /* other start and end markers */
    c = parse("replace_start {{\nreplace_end }}\nreplace_tag X q\nbody S1 /a{{X}}b/\n"
              "replace_rules S1\n");
    assert_string_equal(rule(c, "S1")->re, "aqb");
    sa_conf_free(c);
    /* a pattern its templates grow beyond 4 MiB is marked, not cut */
    {
        size_t n = 4400 * 3 + 4096;
        char *src = malloc(n + 2000), *p = src;
        p += sprintf(p, "replace_tag A ");
        for (int i = 0; i < 1000; i++)
            *p++ = 'a';
        p += sprintf(p, "\nbody BIG /");
        for (int i = 0; i < 4400; i++)
            p += sprintf(p, "<A>");
        p += sprintf(p, "/\nreplace_rules BIG\n");
        c = parse(src);
        assert_true(rule(c, "BIG")->too_large);
        assert_int_equal(rule(c, "BIG")->re_len, 4400 * 3);
        sa_conf_free(c);
        free(src);
    }
    /* a tag that brings itself stops after the passes */
    c = parse("replace_tag L <L>x\nbody SELF /<L>/\nreplace_rules SELF\n");
    assert_non_null(strstr(rule(c, "SELF")->re, "xxxx"));
    sa_conf_free(c);
}

static void test_redefinition_and_warnings(void **state)
{
    (void)state;
    struct sa_conf *c = parse("body R /old/\n"
                              "score R 4\n"
                              "describe R text\n"
                              "header R Subject =~ /new/\n"
                              "body 1BAD /x/\n"
                              "body NODELIM x\n"
                              "body BADEND /x/E\n"
                              "body UNQUOTED /a/b/\n"
                              "body EVALRE /(?{ system() })/\n"
                              "header NOOP Subject /x/\n"
                              "body\n"
                              "meta EMPTYMETA\n"
                              "header BADEX exists:Bad:Name\n"
                              "freemail_domains example.com\n"
                              "freemail_domains example.net\n"
                              "report_safe 0\n");
    const struct sa_rule *r = rule(c, "R");
    assert_int_equal(r->kind, SA_HEADER);
    assert_string_equal(r->re, "new");
    assert_true(r->score[0] == 4);
    assert_string_equal(r->describe, "text");
    assert_int_equal(r->line, 4);
    const char *bad[] = {"1BAD",   "NODELIM", "BADEND",    "UNQUOTED",
                         "EVALRE", "NOOP",    "EMPTYMETA", "BADEX"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(sa_conf_rule(c, bad[i]));
    assert_int_equal(c->warnings.n, 9);
    for (unsigned i = 0; i < 9; i++)
        assert_int_equal(c->warnings.v[i].line, 5 + i);
    assert_non_null(strstr(c->warnings.v[3].msg, "unquoted delimiter '/'"));
    /* the list settings are read into the lists, not ignored */
    assert_int_equal(tally(&c->ignored, "freemail_domains"), 0);
    assert_int_equal(sa_lists_is_freemail(c->lists, "a@example.net", 13), 1);
    /* a setting smtpgate never acts on is counted with why */
    assert_int_equal(tally(&c->ignored, "report_safe"), 0);
    assert_int_equal(
        tally(&c->ignored, "report_safe (smtpgate adds fields, it never rewrites the message)"), 1);
    sa_conf_free(c);
}

/* The header and report settings go to ->hdr, in file order; a malformed
 * one is a warning at its line and changes nothing; inside a false block
 * they are not read. */
static void test_header_settings(void **state)
{
    (void)state;
    struct sa_conf *c = parse("clear_headers\n"
                              "add_header all Status _YESNO_\n"
                              "add_header spam Flag \"_YESNOCAPS_\"\n"
                              "add_header all Status again\n"
                              "add_header sometimes Bad x\n"
                              "required_score 6.5\n"
                              "required_score many\n"
                              "ifplugin Mail::SpamAssassin::Plugin::NotThere\n"
                              "add_header all Hidden x\n"
                              "required_score 1\n"
                              "endif\n"
                              "report one\n"
                              "clear_report_template\n"
                              "report two\n");
    assert_true(c->hdr->fields_set);
    assert_int_equal(c->hdr->nham, 1);
    assert_string_equal(c->hdr->ham[0].template, "again");
    assert_int_equal(c->hdr->nspam, 2);
    assert_string_equal(c->hdr->spam[0].name, "Flag");
    assert_string_equal(c->hdr->spam[0].template, "_YESNOCAPS_");
    assert_string_equal(c->hdr->spam[1].name, "Status");
    assert_true(c->hdr->required_set && c->hdr->required == 6.5);
    assert_string_equal(c->hdr->report, "two\n");
    assert_int_equal(c->warnings.n, 2);
    assert_int_equal(c->warnings.v[0].line, 5);
    assert_non_null(strstr(c->warnings.v[0].msg, "add_header"));
    assert_int_equal(c->warnings.v[1].line, 7);
    assert_int_equal(tally(&c->ignored, "add_header"), 0);
    assert_int_equal(tally(&c->ignored, "required_score"), 0);
    sa_conf_free(c);
}

static void test_cond_eval(void **state)
{
    (void)state;
    bool v;
    const struct sa_env *e = &sa_env_default;
#define COND(s) sa_cond_eval(s, strlen(s), e, &v)
    assert_int_equal(COND("version >= 4"), 0);
    assert_true(v);
    assert_int_equal(COND("(version > 4.000001) || 0"), 0);
    assert_false(v);
    assert_int_equal(COND("!((version >= 3.004000))"), 0);
    assert_false(v);
    assert_int_equal(COND("plugin(Mail::SpamAssassin::Plugin::ReplaceTags) && 1"), 0);
    assert_true(v);
    assert_int_equal(COND("plugin (Mail::SpamAssassin::Plugin::Dmarc)"), 0);
    assert_false(v);
    /* init.pre's enable_compat, as shipped */
    assert_int_equal(COND("!!can(Mail::SpamAssassin::Conf::compat_welcomelist_blocklist)"), 0);
    assert_true(v);
    assert_int_equal(COND("!!can(Mail::SpamAssassin::Conf::feature_capture_rules)"), 0);
    assert_true(v);
    assert_int_equal(COND("!!can(Mail::SpamAssassin::Conf::feature_get_host)"), 0);
    assert_false(v);
    assert_int_equal(COND("perl_version >= 5.010"), 0);
    assert_true(v);
    assert_int_equal(COND("version"), 0);
    assert_true(v);
    assert_int_equal(COND("system(1)"), -1);
    assert_int_equal(COND("(1"), -1);
    assert_int_equal(COND(""), -1);
    assert_int_equal(COND("1 2"), -1);
    assert_int_equal(COND("plugin()"), -1);
    /* nesting is bounded */
    char deep[200];
    memset(deep, '(', 100);
    deep[100] = '1';
    memset(deep + 101, ')', 98);
    deep[199] = '\0';
    assert_int_equal(COND(deep), -1);
#undef COND
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_kinds),
        cmocka_unit_test(test_comments_and_lines),
        cmocka_unit_test(test_scores),
        cmocka_unit_test(test_rule_settings),
        cmocka_unit_test(test_redirector_pattern),
        cmocka_unit_test(test_conditionals),
        cmocka_unit_test(test_require_version),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_redefinition_and_warnings),
        cmocka_unit_test(test_header_settings),
        cmocka_unit_test(test_cond_eval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
