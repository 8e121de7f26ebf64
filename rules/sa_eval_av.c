/*
 * sa_eval_av - SpamAssassin's AntiVirus tests (Plugin::AntiVirus),
 * natively, over SpamAssassin's own MIME tree (sa_mime.h):
 *
 *   check_microsoft_executable()  a leaf part named (Content-Type's name,
 *                                 lower-cased) like a Windows program
 *                                 (.exe, .scr, .pif, .js, ... 55 endings),
 *                                 else base64 whose first raw line starts
 *                                 as an MZ header does, else a text part
 *                                 with a uuencoded MZ header line
 *   check_suspect_name()          a named leaf part, not
 *                                 application/octet-stream, whose name's
 *                                 last extension does not fit its type
 *                                 (.txt/.html/.xml not text, .jpg/.gif/.png/
 *                                 .tif not image, .vcf not text/vcard,
 *                                 .exe/.scr/.bat/... not application/...,
 *                                 .doc/.ppt/.xls not Office's)
 *
 * What it promises: the plugin's _check_attachments over every leaf in
 * find_parts order, its patterns word for word; the type as
 * parse_content_type reads the part's last Content-Type field, its "x-"
 * or "vnd." after the slash dropped for the name test.
 *
 * What it assumes: the tree is the one sa_mime_parse builds; the AntiVirus
 * plugin is the one SpamAssassin ships (no scanner is called).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_int.h"
#include "rules/sa_eval.h"
#include "rules/sa_mime.h"
#include "util/alloc.h"

enum { RE_EXE_NAME, RE_MZ_BASE64, RE_MZ_UUENCODED };

static bool av_check(struct sa_eval_call *c, char *why, size_t wn)
{
    return sa_eval_nargs(c, 0, SA_EVAL_ARGS_MAX, why, wn) &&
           sa_eval_compile(c,
                           "\\.(?:ade|adp|asx|bas|bat|chm|cmd|com|cpl|crt|dll|exe|hlp|hta|inf|ins|"
                           "isp|js|jse|lnk|mda|mdb|mde|mdt|mdw|mdz|msc|msi|msp|mst|nws|ops|pcd|pif|"
                           "prf|reg|scf|scr\\??|sct|shb|shs|shm|swf|url|vb|vbe|vbs|vbx|vxd|wsc|wsf|"
                           "wsh)$",
                           0, why, wn) &&
           sa_eval_compile(c, "^TV[opqr].A..[AB].[AQgw][A-H].A", 0, why, wn) &&
           sa_eval_compile(c, "^M35[GHIJK].`..`..*````", 0, why, wn);
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool one_of(const char *s, const char *const *v)
{
    for (; *v; v++)
        if (strcmp(s, *v) == 0)
            return true;
    return false;
}

/* s =~ /^application\/.*SUFFIX$/ */
static bool app_ending(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return starts(s, "application/") && n >= 12 + k && strcmp(s + n - k, suffix) == 0;
}

/* the name test: ext the name after its last dot, ct the type with its
 * "x-" or "vnd." after the slash gone */
static bool suspect(const char *ext, const char *ct)
{
    static const char *const html[] = {"txt", "htm", "html", "phtm", "phtml", "xhtm", "xhtml",
                                       "xml", NULL};
    static const char *const texts[] = {"text/plain", "text/htm", "text/phtm", "text/xhtm",
                                        "text/english", "text/sgml", "text/xml", "text/enriched",
                                        "text/richtext", "message/external-body", NULL};
    static const char *const images[] = {"jpg", "jpeg", "tif", "tiff", "gif", "png", NULL};
    static const char *const programs[] = {"bat", "com", "exe", "pif", "scr", "swf", "vbs", NULL};
    if (one_of(ext, html)) {
        /* m@^(?:text/(?:plain|[px]?html?|...)|message/external-body)@: a prefix */
        bool fits = false;
        for (const char *const *t = texts; *t && !fits; t++)
            fits = starts(ct, *t);
        return !fits;
    }
    if (one_of(ext, images))
        return !starts(ct, "image/") && !starts(ct, "application/mac-binhex");
    if (strcmp(ext, "vcf") == 0)
        return strcmp(ct, "text/vcard") != 0;
    if (one_of(ext, programs))
        return !starts(ct, "application/");
    if (strcmp(ext, "doc") == 0)
        return !app_ending(ct, "word");
    if (strcmp(ext, "ppt") == 0)
        return !app_ending(ct, "powerpoint") && !app_ending(ct, "ppt");
    if (strcmp(ext, "xls") == 0)
        return !app_ending(ct, "excel");
    return false;
}

static void lower(char *s)
{
    for (; s && *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* _check_attachments: *exe and *name; -1 when out of memory */
static int attachments(const struct sa_eval_call *c, struct rules_msg *m, bool *exe, bool *name)
{
    *exe = *name = false;
    struct sa_mime *t = rules_msg_sa_mime(m);
    if (t == NULL)
        return -1;
    for (size_t i = 0; i < t->nnodes; i++) {
        const struct sa_mime_node *nd = &t->nodes[i];
        if (!nd->leaf)
            continue;
        struct sa_mime_ct ct;
        if (!sa_mime_content_type(nd->ct, &ct))
            return -1;
        char *nm = ct.name ? ct.name : (char *)"";
        lower(nm);
        lower(ct.type);
        /* Perl's truth of the name: not "" and not "0" */
        bool named = nm[0] != '\0' && strcmp(nm, "0") != 0;
        const struct sa_mime_line *first = nd->nlines > 0 ? &t->lines[nd->line0] : NULL;
        char *cte = util_strdup(nd->cte ? nd->cte : "");
        if (cte == NULL) {
            sa_mime_ct_free(&ct);
            return -1;
        }
        lower(cte);
        if (named && sa_eval_match(c, RE_EXE_NAME, NULL, nm, strlen(nm), 0, NULL, NULL) == 1) {
            *exe = true;
        } else if (strstr(cte, "base64") != NULL && first != NULL) {
            if (sa_eval_match(c, RE_MZ_BASE64, NULL, first->p, first->n, 0, NULL, NULL) == 1)
                *exe = true;
        } else if (starts(ct.type, "text") && !(isalnum((unsigned char)ct.type[4]) ||
                                                 ct.type[4] == '_')) {
            for (size_t k = 0; k < nd->nlines && !*exe; k++) {
                const struct sa_mime_line *l = &t->lines[nd->line0 + k];
                if (sa_eval_match(c, RE_MZ_UUENCODED, NULL, l->p, l->n, 0, NULL, NULL) == 1)
                    *exe = true;
            }
        }
        free(cte);
        if (named && strcmp(ct.type, "application/octet-stream") != 0) {
            const char *dot = strrchr(nm, '.');
            const char *ext = dot ? dot + 1 : nm;
            /* s@/(x-|vnd\.)@/@ */
            char *type = ct.type;
            char *sl = strchr(type, '/');
            if (sl != NULL && (starts(sl + 1, "x-") || starts(sl + 1, "vnd.")))
                memmove(sl + 1, sl + (sl[1] == 'x' ? 3 : 5), strlen(sl + (sl[1] == 'x' ? 3 : 5)) + 1);
            if (suspect(ext, type))
                *name = true;
        }
        sa_mime_ct_free(&ct);
    }
    return rules_msg_nomem(m) ? -1 : 0;
}

static int microsoft_executable(const struct sa_eval_call *c, struct rules_msg *m)
{
    bool exe, name;
    return attachments(c, m, &exe, &name) != 0 ? -1 : exe;
}

static int suspect_name(const struct sa_eval_call *c, struct rules_msg *m)
{
    bool exe, name;
    return attachments(c, m, &exe, &name) != 0 ? -1 : name;
}

const struct sa_eval_def sa_eval_av_defs[] = {
    {"check_microsoft_executable", microsoft_executable, av_check},
    {"check_suspect_name", suspect_name, av_check},
    {NULL, NULL, NULL},
};
