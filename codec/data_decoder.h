/*
 * data_decoder - incremental decoder of the SMTP DATA stream (RFC 5321 4.1.1.4,
 * 4.5.2), pure.
 *
 * Bytes from the client after "354" are fed in pieces of any size; the decoder
 * removes dot-stuffing and hands decoded message bytes to a sink callback.  The
 * end of data is recognised at CRLF "." CRLF only (the leading CRLF may be the
 * start of the data stream, i.e. an empty message is ".\r\n").  Nothing else ends
 * the data: not LF "." LF, not CR "." CR, nor any mix.
 *
 * Defects found in the stream are sticky (the first one is kept in ->error) and
 * the decoder keeps looking for the real end of data, so that the client can be
 * answered after its final dot and the session stays in sync:
 *   - bare LF (not preceded by CR) or bare CR (not followed by LF):
 *       policy REJECT: DATA_ERR_BARE_NEWLINE (reply 554 5.6.0);
 *       policy NORMALIZE: written to the sink as CRLF, never an end of data,
 *       and a dot after it is not unstuffed (it is not at a real line start);
 *   - NUL byte: DATA_ERR_NUL (554 5.6.0);
 *   - a line longer than max_line_length octets, CRLF excluded: DATA_ERR_LINE_TOO_LONG
 *     (554 5.6.0);
 *   - more than max_size decoded octets: DATA_ERR_TOO_BIG (552 5.3.4).
 * After the first defect nothing more is written to the sink.
 *
 * The sink receives the message with CRLF line endings; the final CRLF before
 * the terminating dot belongs to the message ("a\r\n.\r\n" gives "a\r\n").
 */
#ifndef SMTPGATE_DATA_DECODER_H
#define SMTPGATE_DATA_DECODER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum data_newline_policy { DATA_NEWLINE_REJECT = 0, DATA_NEWLINE_NORMALIZE };

enum data_error {
    DATA_ERR_NONE = 0,
    DATA_ERR_BARE_NEWLINE,
    DATA_ERR_NUL,
    DATA_ERR_LINE_TOO_LONG,
    DATA_ERR_TOO_BIG,
    DATA_ERR_SINK, /* the sink returned non-zero (e.g. spool write failed): 451 4.3.0 */
};

/* Returns 0 on success; non-zero stops output and sets DATA_ERR_SINK. */
typedef int (*data_sink_fn)(void *ctx, const char *bytes, size_t len);

struct data_decoder {
    /* configuration */
    enum data_newline_policy newline_policy;
    size_t max_line_length;
    uint64_t max_size; /* 0 = unlimited */
    data_sink_fn sink;
    void *sink_ctx;
    /* state (private) */
    int state;
    size_t line_len;
    uint64_t out_size;
    enum data_error error;
    bool done;
};

void data_decoder_init(struct data_decoder *d, enum data_newline_policy policy,
                       size_t max_line_length, uint64_t max_size, data_sink_fn sink,
                       void *sink_ctx);

/*
 * Feed len bytes.  Returns the number of bytes consumed: all of them, unless the
 * end of data was reached, in which case the count stops right after the final
 * "\r\n" of ".\r\n" (the rest belongs to the next command) and d->done is true.
 */
size_t data_decoder_feed(struct data_decoder *d, const char *in, size_t len);

/* Total decoded octets (what the sink received, or would have). */
uint64_t data_decoder_size(const struct data_decoder *d);

const char *data_error_reply(enum data_error e);

/*
 * Checks a BDAT chunk's octets for the same defects as DATA (bare LF/CR, NUL,
 * long lines) when the body is not BINARYMIME.  State carries across chunks:
 * initialise with data_decoder_init (the sink receives the chunk's bytes, normalised
 * under NORMALIZE) and call bdat_check_feed for each piece of each chunk.  No
 * dot handling: BDAT content is never stuffed.
 */
void bdat_check_feed(struct data_decoder *d, const char *in, size_t len);

/* Call after the LAST chunk: a trailing bare CR is a defect. */
void bdat_check_finish(struct data_decoder *d);

#endif
