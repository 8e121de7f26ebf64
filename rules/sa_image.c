/*
 * sa_image - image dimensions as ImageInfo reads them (see sa_image.h).
 * Each loop moves forward by at least 4 octets a turn and stops at the
 * end of the data, so any input ends.
 */
#include "rules/sa_image.h"

#include <string.h>

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool gif(const unsigned char *d, size_t n, uint32_t *w, uint32_t *h)
{
    if (n < 10 || memcmp(d, "GIF8", 4) != 0 || (d[4] != '7' && d[4] != '9') || d[5] != 'a')
        return false;
    *w = (uint32_t)d[6] | (uint32_t)d[7] << 8;
    *h = (uint32_t)d[8] | (uint32_t)d[9] << 8;
    return *w && *h;
}

static bool png(const unsigned char *d, size_t n, uint32_t *w, uint32_t *h)
{
    if (n < 8 || memcmp(d, "\x89PNG\r\n\x1a\n", 8) != 0)
        return false;
    for (size_t pos = 8; pos < n; pos += 8) {
        size_t avail = n - pos;
        if (avail >= 8 && memcmp(d + pos + 4, "IEND", 4) == 0)
            return false;
        if (avail < 8 || be32(d + pos) != 13 || memcmp(d + pos + 4, "IHDR", 4) != 0)
            continue;
        size_t at = pos + 8;
        /* the chunk's data and CRC, its last 4 octets taken as the CRC */
        size_t got = n - at < 17 ? n - at : 17;
        if (got < 12)
            return false;
        *w = be32(d + at);
        *h = be32(d + at + 4);
        return *w && *h;
    }
    return false;
}

static bool sof(unsigned char m)
{
    return (m >= 0xC0 && m <= 0xC3) || (m >= 0xC5 && m <= 0xC7) || (m >= 0xC9 && m <= 0xCB) ||
           (m >= 0xCD && m <= 0xCF);
}

static bool jpeg(const unsigned char *d, size_t n, uint32_t *w, uint32_t *h)
{
    if (n < 2 || d[0] != 0xFF || d[1] != 0xD8)
        return false;
    size_t pos = 2;
    while (pos + 4 <= n) {
        unsigned char mark = d[pos + 1];
        size_t len = (size_t)d[pos + 2] << 8 | d[pos + 3];
        if (d[pos] != 0xFF || mark == 0xDA || mark == 0xD9 || len < 2)
            return false;
        pos += 4;
        size_t blen = n - pos < len - 2 ? n - pos : len - 2;
        if (sof(mark)) {
            *h = blen >= 3 ? (uint32_t)d[pos + 1] << 8 | d[pos + 2] : 0;
            *w = blen >= 5 ? (uint32_t)d[pos + 3] << 8 | d[pos + 4] : 0;
            return *w && *h;
        }
        pos += blen;
    }
    return false;
}

bool sa_image_dims(enum sa_image_type type, const unsigned char *data, size_t n, uint32_t *width,
                   uint32_t *height)
{
    *width = *height = 0;
    switch (type) {
    case SA_IMAGE_GIF:
        return gif(data, n, width, height);
    case SA_IMAGE_PNG:
        return png(data, n, width, height);
    case SA_IMAGE_JPEG:
        return jpeg(data, n, width, height);
    }
    return false;
}
