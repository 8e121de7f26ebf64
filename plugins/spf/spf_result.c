/*
 * spf_result - the seven results of RFC 7208 2.6 and their names, pure.
 */
#include "spf_result.h"

#include <stddef.h>
#include <strings.h>

static const char *const result_names[SPFC__COUNT] = {"none",     "neutral",   "pass",     "fail",
                                                      "softfail", "temperror", "permerror"};

const char *spf_result_name(enum spf_result r)
{
    return (unsigned)r < SPFC__COUNT ? result_names[r] : "?";
}

int spf_result_parse(const char *name)
{
    for (int i = 0; i < SPFC__COUNT; i++)
        if (name != NULL && strcasecmp(name, result_names[i]) == 0)
            return i;
    return -1;
}
