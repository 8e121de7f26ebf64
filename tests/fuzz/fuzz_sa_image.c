// fuzz-sources: rules/sa_image.c
/*
 * Image headers come from attachments: any octets, read as each type, must
 * give dimensions or none, never a read outside the input (copied to a
 * buffer of exactly its size) or a hang; dimensions given are never 0.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/sa_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    for (int t = SA_IMAGE_GIF; t <= SA_IMAGE_JPEG; t++) {
        uint32_t w = 7, h = 7;
        bool ok = sa_image_dims((enum sa_image_type)t, buf, size, &w, &h);
        if (ok && (w == 0 || h == 0))
            abort();
    }
    free(buf);
    return 0;
}
