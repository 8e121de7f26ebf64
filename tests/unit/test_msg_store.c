/*
 * Unit tests for msg_store: memory mode, the spill exactly past the threshold,
 * reads in memory, in the file, in the write buffer and across the boundaries
 * between them, 30 MB written in uneven pieces and read back, a spool
 * directory that is missing or not a directory, reset and reuse, the sink
 * adapter, and that a spill leaves no file behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "message/msg_store.h"

struct spool {
    char dir[256];
};

static int spool_setup(void **state)
{
    struct spool *sp = malloc(sizeof(*sp));
    if (sp == NULL)
        return -1;
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    int n = snprintf(sp->dir, sizeof(sp->dir), "%s/test_msg_store.XXXXXX", tmp);
    if (n < 0 || (size_t)n >= sizeof(sp->dir)) {
        free(sp);
        return -1;
    }
    if (mkdtemp(sp->dir) == NULL) {
        free(sp);
        return -1;
    }
    *state = sp;
    return 0;
}

static size_t spool_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int spool_teardown(void **state)
{
    struct spool *sp = *state;
    int rc = rmdir(sp->dir);
    free(sp);
    return rc;
}

/* Deterministic content: octet i of a message. */
static char pattern(uint64_t i)
{
    return (char)((i * 7 + (i >> 8) * 13 + (i >> 16)) & 0xff);
}

static void append_pattern(struct msg_store *s, uint64_t from, size_t n)
{
    char *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern(from + i);
    assert_int_equal(msg_store_append(s, buf, n), 0);
    free(buf);
}

static void check_read(struct msg_store *s, uint64_t offset, size_t n)
{
    char *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    uint64_t size = msg_store_size(s);
    size_t want = offset >= size ? 0 : (size - offset < n ? (size_t)(size - offset) : n);
    ssize_t r = msg_store_read(s, offset, buf, n);
    assert_int_equal(r, want);
    for (size_t i = 0; i < want; i++)
        if (buf[i] != pattern(offset + i))
            fail_msg("octet %llu differs", (unsigned long long)(offset + i));
    free(buf);
}

static void test_memory(void **state)
{
    struct spool *sp = *state;
    struct msg_store *s = msg_store_new(1024, sp->dir);
    assert_non_null(s);
    assert_int_equal(msg_store_size(s), 0);
    assert_false(msg_store_spilled(s));
    char b[8];
    assert_int_equal(msg_store_read(s, 0, b, sizeof(b)), 0);
    assert_int_equal(msg_store_append(s, "", 0), 0);
    append_pattern(s, 0, 100);
    append_pattern(s, 100, 900);
    assert_false(msg_store_spilled(s));
    assert_int_equal(msg_store_size(s), 1000);
    assert_int_equal(msg_store_flush(s), 0);
    check_read(s, 0, 1000);
    check_read(s, 10, 5);
    check_read(s, 990, 100);
    check_read(s, 1000, 10);
    check_read(s, 5000, 10);
    assert_int_equal(spool_entries(sp->dir), 0);
    msg_store_free(s);
}

static void test_spill_at_threshold(void **state)
{
    struct spool *sp = *state;
    struct msg_store *s = msg_store_new(1000, sp->dir);
    assert_non_null(s);
    append_pattern(s, 0, 600);
    append_pattern(s, 600, 400);
    /* Exactly the threshold stays in memory... */
    assert_false(msg_store_spilled(s));
    assert_int_equal(msg_store_size(s), 1000);
    /* ...one octet more moves all of it to the file. */
    append_pattern(s, 1000, 1);
    assert_true(msg_store_spilled(s));
    assert_int_equal(msg_store_size(s), 1001);
    /* The file is already unlinked. */
    assert_int_equal(spool_entries(sp->dir), 0);
    append_pattern(s, 1001, 5000);
    assert_int_equal(msg_store_size(s), 6001);
    /* Readable before and after flushing: file part, buffer part, both. */
    check_read(s, 0, 6001);
    check_read(s, 990, 20);
    check_read(s, 999, 3);
    check_read(s, 5990, 100);
    assert_int_equal(msg_store_flush(s), 0);
    check_read(s, 0, 6001);
    check_read(s, 995, 10);
    check_read(s, 6001, 10);
    msg_store_free(s);
}

static void test_spill_in_one_append(void **state)
{
    struct spool *sp = *state;
    struct msg_store *s = msg_store_new(100, sp->dir);
    assert_non_null(s);
    append_pattern(s, 0, 50);
    append_pattern(s, 50, 200000); /* past the threshold and past the write buffer */
    assert_true(msg_store_spilled(s));
    assert_int_equal(msg_store_size(s), 200050);
    check_read(s, 0, 200050);
    check_read(s, 49, 2);
    msg_store_free(s);
}

static void test_threshold_zero(void **state)
{
    struct spool *sp = *state;
    struct msg_store *s = msg_store_new(0, sp->dir);
    assert_non_null(s);
    assert_false(msg_store_spilled(s));
    assert_int_equal(msg_store_append(s, "", 0), 0);
    append_pattern(s, 0, 1);
    assert_true(msg_store_spilled(s));
    append_pattern(s, 1, 99);
    check_read(s, 0, 100);
    msg_store_free(s);
}

static void test_read_across_write_buffer(void **state)
{
    struct spool *sp = *state;
    struct msg_store *s = msg_store_new(0, sp->dir);
    assert_non_null(s);
    /* Small appends: some octets in the file, the rest in the buffer. */
    uint64_t off = 0;
    for (size_t i = 0; i < 3000; i++) {
        size_t n = 1 + (i * 37) % 97;
        append_pattern(s, off, n);
        off += n;
    }
    assert_int_equal(msg_store_size(s), off);
    for (uint64_t o = 0; o < off; o += 4093)
        check_read(s, o, 8191);
    check_read(s, 0, (size_t)off);
    msg_store_free(s);
}

static void test_large(void **state)
{
    struct spool *sp = *state;
    struct msg_store *s = msg_store_new(1 << 20, sp->dir);
    assert_non_null(s);
    uint64_t total = 30u << 20;
    size_t maxpiece = 300000;
    char *buf = malloc(maxpiece);
    assert_non_null(buf);
    uint64_t off = 0;
    for (size_t i = 0; off < total; i++) {
        size_t n = 1 + (i * 104729) % maxpiece;
        if (n > total - off)
            n = (size_t)(total - off);
        for (size_t k = 0; k < n; k++)
            buf[k] = pattern(off + k);
        assert_int_equal(msg_store_sink(s, buf, n), 0);
        off += n;
    }
    assert_true(msg_store_spilled(s));
    assert_int_equal(msg_store_size(s), total);
    assert_int_equal(msg_store_flush(s), 0);

    /* Read back in the pieces an upstream stream would use. */
    size_t chunk = 65536;
    for (uint64_t o = 0; o < total; o += chunk) {
        ssize_t r = msg_store_read(s, o, buf, chunk);
        size_t want = total - o < chunk ? (size_t)(total - o) : chunk;
        assert_int_equal(r, want);
        for (size_t k = 0; k < want; k++)
            if (buf[k] != pattern(o + k))
                fail_msg("octet %llu differs", (unsigned long long)(o + k));
    }
    assert_int_equal(msg_store_read(s, total, buf, chunk), 0);
    free(buf);
    msg_store_free(s);
}

static void test_spool_missing(void **state)
{
    struct spool *sp = *state;
    char missing[320];
    snprintf(missing, sizeof(missing), "%s/no/such/dir", sp->dir);
    struct msg_store *s = msg_store_new(10, missing);
    assert_non_null(s);
    append_pattern(s, 0, 10);
    errno = 0;
    assert_int_equal(msg_store_append(s, "x", 1), -1);
    assert_int_equal(errno, ENOENT);
    /* Nothing was lost or half-added. */
    assert_false(msg_store_spilled(s));
    assert_int_equal(msg_store_size(s), 10);
    check_read(s, 0, 10);
    assert_int_equal(msg_store_sink(s, "x", 1), -1);
    msg_store_free(s);

    s = msg_store_new(0, NULL);
    assert_non_null(s);
    assert_int_equal(msg_store_append(s, "x", 1), -1);
    assert_int_not_equal(errno, 0);
    msg_store_free(s);
}

static void test_spool_unwritable(void **state)
{
    struct spool *sp = *state;
    /* A regular file where the directory should be: refused even to root. */
    char file[320];
    snprintf(file, sizeof(file), "%s/file", sp->dir);
    int fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    struct msg_store *s = msg_store_new(0, file);
    assert_non_null(s);
    errno = 0;
    assert_int_equal(msg_store_append(s, "abc", 3), -1);
    assert_int_equal(errno, ENOTDIR);
    msg_store_free(s);

    /* A read-only directory, where permissions apply (not to root). */
    char ro[320];
    snprintf(ro, sizeof(ro), "%s/ro", sp->dir);
    assert_int_equal(mkdir(ro, 0500), 0);
    s = msg_store_new(0, ro);
    assert_non_null(s);
    errno = 0;
    int rc = msg_store_append(s, "abc", 3);
    if (geteuid() != 0) {
        assert_int_equal(rc, -1);
        assert_int_equal(errno, EACCES);
    }
    msg_store_free(s);
    assert_int_equal(spool_entries(ro), 0);
    assert_int_equal(rmdir(ro), 0);
    assert_int_equal(unlink(file), 0);
}

static void test_reset(void **state)
{
    struct spool *sp = *state;
    struct msg_store *s = msg_store_new(100, sp->dir);
    assert_non_null(s);
    append_pattern(s, 0, 500);
    assert_true(msg_store_spilled(s));
    msg_store_reset(s);
    assert_false(msg_store_spilled(s));
    assert_int_equal(msg_store_size(s), 0);
    char b[4];
    assert_int_equal(msg_store_read(s, 0, b, sizeof(b)), 0);

    /* Reused: memory again, then a new spill. */
    append_pattern(s, 0, 50);
    assert_false(msg_store_spilled(s));
    check_read(s, 0, 50);
    append_pattern(s, 50, 51);
    assert_true(msg_store_spilled(s));
    check_read(s, 0, 101);
    msg_store_reset(s);
    msg_store_reset(s);
    append_pattern(s, 0, 10);
    check_read(s, 0, 10);
    msg_store_free(s);
    msg_store_free(NULL);
}

static void test_no_descriptor_leak(void **state)
{
    struct spool *sp = *state;
    int before = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(before >= 0);
    close(before);
    struct msg_store *s = msg_store_new(0, sp->dir);
    assert_non_null(s);
    for (int i = 0; i < 50; i++) {
        append_pattern(s, 0, 10);
        msg_store_reset(s);
    }
    append_pattern(s, 0, 10);
    msg_store_free(s);
    int after = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_int_equal(after, before);
    close(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_memory, spool_setup, spool_teardown),
        cmocka_unit_test_setup_teardown(test_spill_at_threshold, spool_setup, spool_teardown),
        cmocka_unit_test_setup_teardown(test_spill_in_one_append, spool_setup, spool_teardown),
        cmocka_unit_test_setup_teardown(test_threshold_zero, spool_setup, spool_teardown),
        cmocka_unit_test_setup_teardown(test_read_across_write_buffer, spool_setup, spool_teardown),
        cmocka_unit_test_setup_teardown(test_large, spool_setup, spool_teardown),
        cmocka_unit_test_setup_teardown(test_spool_missing, spool_setup, spool_teardown),
        cmocka_unit_test_setup_teardown(test_spool_unwritable, spool_setup, spool_teardown),
        cmocka_unit_test_setup_teardown(test_reset, spool_setup, spool_teardown),
        cmocka_unit_test_setup_teardown(test_no_descriptor_leak, spool_setup, spool_teardown),
    };
    return cmocka_run_group_tests_name("msg_store", tests, NULL, NULL);
}
