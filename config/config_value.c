/*
 * config_value - shared parse-callback helpers (see config_value.h).
 */
#include "config/config_value.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int config_value_pass(const char *value, void *result)
{
    *(const char **)result = value;
    return 0;
}

int config_value_int(cfg_t *cfg, const char *name, const char *value, long min, long max,
                     void *result)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 0);
    if (*value == '\0' || *end != '\0' || errno) {
        cfg_error(cfg, "'%s' is \"%s\"; it must be a whole number", name, value);
        return -1;
    }
    if (v < min || v > max) {
        cfg_error(cfg, "'%s' is %ld; it must be from %ld to %ld", name, v, min, max);
        return -1;
    }
    *(long *)result = v;
    return 0;
}

int config_value_choice(cfg_t *cfg, const char *name, const char *value, const char *const *choices,
                        void *result)
{
    for (size_t i = 0; choices[i]; i++)
        if (strcmp(value, choices[i]) == 0)
            return config_value_pass(value, result);
    /* The list is the schema's own (a few short words); cut short, never overrun. */
    char list[256] = "";
    for (size_t i = 0; choices[i]; i++) {
        strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
        strncat(list, choices[i], sizeof(list) - strlen(list) - 1);
    }
    cfg_error(cfg, "'%s' is \"%s\"; expected one of: %s", name, value, list);
    return -1;
}

const char *config_value_source(const cfg_t *cfg)
{
    return cfg && cfg->filename ? cfg->filename : "(config)";
}
