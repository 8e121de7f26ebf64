/*
 * sa_image - the width and height of a GIF, PNG or JPEG image, read as
 * SpamAssassin's Plugin::ImageInfo reads them, pure.
 *
 * What it promises: sa_image_dims reads only data[0..n) and gives true
 * with both dimensions non-zero exactly when ImageInfo would count the
 * image's pixels:
 *   gif   "GIF87a" or "GIF89a", then the little-endian width and height;
 *   png   the signature, then the first 8-octet step (ImageInfo steps 8
 *         octets at a time, not chunk by chunk) holding length 13 and
 *         "IHDR" before one holding "IEND": the big-endian width and
 *         height after it;
 *   jpeg  FF D8, then the markers' segments up to SOS or EOI: the height
 *         and width of the first start-of-frame segment (C0-C3, C5-C7,
 *         C9-CB, CD-CF).
 * What it assumes: data is the decoded image (its first 13 octets are
 * enough for a GIF).
 */
#ifndef SMTPGATE_RULES_SA_IMAGE_H
#define SMTPGATE_RULES_SA_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sa_image_type { SA_IMAGE_GIF, SA_IMAGE_PNG, SA_IMAGE_JPEG };

bool sa_image_dims(enum sa_image_type type, const unsigned char *data, size_t n, uint32_t *width,
                   uint32_t *height);

#endif
