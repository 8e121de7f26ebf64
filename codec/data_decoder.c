/*
 * data_decoder - incremental decoder of the SMTP DATA stream, and the checker
 * of BDAT content, pure.
 *
 * data_decoder_feed() takes the client's bytes after "354" in pieces of any
 * size and hands the decoded message to the sink.  The result (sink output,
 * error, end of data, octets consumed, decoded size) is the same for every way
 * the stream is cut into pieces: nothing is decided from what happens to be
 * at the end of a piece.  A CR, a line-start dot or a line-start dot and CR
 * that end a piece are held in ->state, unwritten, until the next octet says
 * what they are.
 *
 * End of data is CRLF "." CRLF and nothing else (RFC 5321 4.1.1.4).  A line
 * start is the start of the data or the octet after a real CRLF; never the
 * octet after a bare LF or bare CR, so "\n.\r\n" or "\r.\r" cannot end the
 * data for us while meaning something else to the upstream, and under the
 * NORMALIZE policy a dot there is plain text, not stuffing.  At a line start
 * a dot is removed unless it is the final ".\r\n" (RFC 5321 4.5.2).
 *
 * Defects, in order of occurrence in the stream, the first one kept:
 *   bare LF or CR   REJECT: DATA_ERR_BARE_NEWLINE, the octet is dropped;
 *                   NORMALIZE: CRLF is written in its place;
 *   NUL             DATA_ERR_NUL;
 *   long line       DATA_ERR_LINE_TOO_LONG: more than max_line_length octets
 *                   between line breaks, CRLF excluded, counted as received,
 *                   i.e. a stuffing dot counts (it was on the wire; RFC 5321
 *                   4.5.3.1.6 limits the line as transmitted).  A bare newline
 *                   is a line break here too: it is one in the output.
 *                   max_line_length 0 means no limit;
 *   size            DATA_ERR_TOO_BIG once more than max_size octets were
 *                   decoded; the sink gets exactly the first max_size.
 * The sink gets every decoded octet before the defect and none after it, so
 * even a refused message is cut at the same place for every split.  The decoded
 * size goes on counting after a defect (bare newlines dropped under REJECT
 * are not counted), for the log.
 *
 * Speed: inside a line the next CR, LF or NUL is found with memchr(), and the
 * positions found are reused until passed, so every octet is looked at a
 * bounded number of times whatever the input.  Output goes to the sink in runs
 * that end only at a removed dot, a defect, a normalised newline or the end of
 * the piece: usually one sink call per piece.
 *
 * bdat_check_feed() runs the same machine without dots and without an end.
 */
#include "codec/data_decoder.h"

#include <string.h>

enum dd_state {
    DD_LINE_START, /* start of data or after CRLF: a dot here is special */
    DD_TEXT,       /* inside a line */
    DD_CR,         /* the previous piece ended in a CR, not yet written */
    DD_DOT,        /* the previous piece ended in a line-start dot (dropped) */
    DD_DOT_CR,     /* ... in a line-start dot and a CR, neither written */
    DD_DONE,
};

/* Cached positions of the next LF, CR and NUL in the current piece.  Each is
 * valid while it is at or after the scan position; cr never exceeds lf and
 * nul never exceeds cr, a value equal to the bound meaning "none before it". */
struct dd_scan {
    size_t lf, cr, nul;
    bool lf_ok, cr_ok, nul_ok;
};

void data_decoder_init(struct data_decoder *d, enum data_newline_policy policy,
                       size_t max_line_length, uint64_t max_size, data_sink_fn sink, void *sink_ctx)
{
    memset(d, 0, sizeof(*d));
    d->newline_policy = policy;
    d->max_line_length = max_line_length;
    d->max_size = max_size;
    d->sink = sink;
    d->sink_ctx = sink_ctx;
    d->state = DD_LINE_START;
    d->error = DATA_ERR_NONE;
    d->done = false;
}

static void dd_fail(struct data_decoder *d, enum data_error e)
{
    if (d->error == DATA_ERR_NONE)
        d->error = e;
}

/* Decoded octets: counted always, written only while there is no defect, and
 * cut exactly at max_size so the output does not depend on the split. */
static void dd_emit(struct data_decoder *d, const char *p, size_t n)
{
    if (n == 0)
        return;
    uint64_t before = d->out_size;
    d->out_size += n;
    if (d->error != DATA_ERR_NONE)
        return;
    if (d->max_size != 0 && d->out_size > d->max_size) {
        size_t room = before < d->max_size ? (size_t)(d->max_size - before) : 0;
        if (room > 0 && d->sink != NULL && d->sink(d->sink_ctx, p, room) != 0) {
            d->error = DATA_ERR_SINK;
            return;
        }
        d->error = DATA_ERR_TOO_BIG;
        return;
    }
    if (d->sink != NULL && d->sink(d->sink_ctx, p, n) != 0)
        d->error = DATA_ERR_SINK;
}

/* A bare LF or bare CR, whatever was written before it is already out. */
static void dd_bare_newline(struct data_decoder *d)
{
    if (d->newline_policy == DATA_NEWLINE_NORMALIZE)
        dd_emit(d, "\r\n", 2);
    else
        dd_fail(d, DATA_ERR_BARE_NEWLINE);
    d->line_len = 0;
}

static size_t dd_find(const char *in, size_t from, size_t to, int c)
{
    const char *p = memchr(in + from, c, to - from);
    return p != NULL ? (size_t)(p - in) : to;
}

/* Position of the first CR, LF or NUL at or after i, or len. */
static size_t dd_next_special(struct dd_scan *s, const char *in, size_t len, size_t i)
{
    if (!s->lf_ok || s->lf < i) {
        s->lf = dd_find(in, i, len, '\n');
        s->lf_ok = true;
        s->cr_ok = false;
    }
    if (!s->cr_ok || s->cr < i) {
        s->cr = dd_find(in, i, s->lf, '\r');
        s->cr_ok = true;
        s->nul_ok = false;
    }
    if (!s->nul_ok || s->nul < i) {
        s->nul = dd_find(in, i, s->cr, '\0');
        s->nul_ok = true;
    }
    return s->nul;
}

/*
 * The machine shared by DATA (dots true) and BDAT (dots false).  Invariant:
 * in[run..i) are decoded octets not yet written; a held CR or dot is never in
 * that range, so run == i in the states DD_CR, DD_DOT and DD_DOT_CR.
 */
static size_t dd_decode(struct data_decoder *d, const char *in, size_t len, bool dots)
{
    struct dd_scan scan = {0};
    size_t i = 0;
    size_t run = 0;

    while (i < len) {
        switch (d->state) {
        case DD_LINE_START:
            if (dots && in[i] == '.') {
                dd_emit(d, in + run, i - run);
                run = ++i;
                d->line_len = 1;
                d->state = DD_DOT;
            } else {
                d->state = DD_TEXT;
            }
            break;

        case DD_DOT:
            /* Whatever follows, the dot is gone: end of data or stuffing. */
            if (in[i] == '\r') {
                run = ++i;
                d->state = DD_DOT_CR;
            } else {
                d->state = DD_TEXT;
            }
            break;

        case DD_DOT_CR:
            if (in[i] == '\n') {
                d->state = DD_DONE;
                d->done = true;
                return i + 1;
            }
            dd_bare_newline(d);
            d->state = DD_TEXT;
            break;

        case DD_CR:
            if (in[i] == '\n') {
                dd_emit(d, "\r", 1);
                run = i++;
                d->line_len = 0;
                d->state = dots ? DD_LINE_START : DD_TEXT;
            } else {
                dd_bare_newline(d);
                d->state = DD_TEXT;
            }
            break;

        case DD_TEXT: {
            size_t j = dd_next_special(&scan, in, len, i);
            if (d->error == DATA_ERR_NONE && d->max_line_length != 0 &&
                j - i > d->max_line_length - d->line_len) {
                size_t k = i + (d->max_line_length - d->line_len);
                dd_emit(d, in + run, k - run);
                run = k;
                dd_fail(d, DATA_ERR_LINE_TOO_LONG);
            }
            d->line_len += j - i;
            i = j;
            if (j == len)
                break;
            if (in[j] == '\0') {
                if (d->error == DATA_ERR_NONE) {
                    dd_emit(d, in + run, j - run);
                    run = j;
                    dd_fail(d, DATA_ERR_NUL);
                }
                d->line_len++;
                i = j + 1;
            } else if (in[j] == '\n') {
                dd_emit(d, in + run, j - run);
                dd_bare_newline(d);
                run = i = j + 1;
            } else if (j + 1 == len) {
                dd_emit(d, in + run, j - run);
                run = i = len;
                d->state = DD_CR;
            } else if (in[j + 1] == '\n') {
                i = j + 2;
                d->line_len = 0;
                if (dots)
                    d->state = DD_LINE_START;
            } else {
                dd_emit(d, in + run, j - run);
                dd_bare_newline(d);
                run = i = j + 1;
            }
            break;
        }

        default:
            return 0;
        }
    }
    dd_emit(d, in + run, len - run);
    return len;
}

size_t data_decoder_feed(struct data_decoder *d, const char *in, size_t len)
{
    if (len == 0 || d->done || d->state == DD_DONE)
        return 0;
    return dd_decode(d, in, len, true);
}

uint64_t data_decoder_size(const struct data_decoder *d)
{
    return d->out_size;
}

const char *data_error_reply(enum data_error e)
{
    switch (e) {
    case DATA_ERR_NONE:
        return NULL;
    case DATA_ERR_BARE_NEWLINE:
        return "554 5.6.0 Error: bare <CR> or <LF> in message data";
    case DATA_ERR_NUL:
        return "554 5.6.0 Error: NUL character in message data";
    case DATA_ERR_LINE_TOO_LONG:
        return "554 5.6.0 Error: message line too long";
    case DATA_ERR_TOO_BIG:
        return "552 5.3.4 Message size exceeds fixed limit";
    case DATA_ERR_SINK:
        return "451 4.3.0 Error: queue file write error";
    }
    return "451 4.3.0 Error: internal error";
}

void bdat_check_feed(struct data_decoder *d, const char *in, size_t len)
{
    /* No dots in BDAT: a line start is just text. */
    if (d->state == DD_LINE_START)
        d->state = DD_TEXT;
    if (len == 0 || d->state == DD_DONE)
        return;
    (void)dd_decode(d, in, len, false);
}

void bdat_check_finish(struct data_decoder *d)
{
    if (d->state == DD_CR) {
        dd_bare_newline(d);
        d->state = DD_TEXT;
    }
}
